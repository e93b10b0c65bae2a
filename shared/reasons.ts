import { z } from 'zod';

/**
 * Why a model is unavailable to a user.
 *
 * The gateway picks the code from the determining Cedar `forbid` policy's `@reason`
 * annotation (or `NOT_ENTITLED` when nothing permits). `ACCOUNT_SUSPENDED` comes from the
 * gateway's user registry (IT suspended the account), not from a policy; `ENTITLEMENTS_STALE`
 * is only ever set by the client when its document has expired.
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
]);
export type DecisionReason = z.infer<typeof DecisionReason>;

export { reasonTitles } from './reasonTitles';
