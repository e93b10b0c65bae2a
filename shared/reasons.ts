import { z } from 'zod';

/**
 * Why a model is unavailable to a user.
 *
 * The gateway picks the code from the determining Cedar `forbid` policy's `@reason`
 * annotation (or `NOT_ENTITLED` when nothing permits). `ACCOUNT_SUSPENDED` comes from the
 * gateway's user registry (IT suspended the account), not from a policy; `ENTITLEMENTS_STALE`
 * is only ever set by the client when its document has expired.
 * The three `DEVICE_ENROLMENT_PENDING`, `DEVICE_CERTIFICATE_REQUIRED` and
 * `DEVICE_ATTESTATION_FAILED` come from the gateway's enrolment policy when it refuses to open
 * a session for a device, never from a Cedar policy.
 */
export const DecisionReason = z.enum([
  'EXPORT_CONTROL_US_PERSON_REQUIRED',
  'IDENTITY_VERIFICATION_PENDING',
  'DEVICE_NOT_COMPLIANT',
  'DEVICE_ASSURANCE_TOO_LOW',
  'GROUP_MEMBERSHIP_REQUIRED',
  'MODEL_SUSPENDED',
  'NOT_ENTITLED',
  'ACCOUNT_SUSPENDED',
  'ENTITLEMENTS_STALE',
  'DEVICE_ENROLMENT_PENDING',
  'DEVICE_CERTIFICATE_REQUIRED',
  'DEVICE_ATTESTATION_FAILED',
]);
export type DecisionReason = z.infer<typeof DecisionReason>;

/** Reasons the gateway's enrolment policy gives when it refuses a device a session. */
export const ENROLMENT_REASONS = [
  'DEVICE_ENROLMENT_PENDING',
  'DEVICE_CERTIFICATE_REQUIRED',
  'DEVICE_ATTESTATION_FAILED',
] as const satisfies readonly DecisionReason[];
export type EnrolmentReason = (typeof ENROLMENT_REASONS)[number];

/**
 * The step of TPM key attestation that failed, named in a `DEVICE_ATTESTATION_FAILED` problem's `step`.
 */
export const AttestationStep = z.enum([
  'missing',
  'format',
  'ek-certificate',
  'credential-activation',
  'certification',
  'device-key',
  'session-key',
]);
export type AttestationStep = z.infer<typeof AttestationStep>;

export { reasonTitles, enrolmentMessages } from './reasonTitles';
