import type { DecisionReason, EnrolmentReason } from './reasons';

/**
 * Short titles for each reason, used when a policy carries no `@title` of its own.
 *
 * Kept apart from the zod schemas so the renderer can show them without bundling zod.
 */
export const reasonTitles: Readonly<Record<DecisionReason, string>> = {
  EXPORT_CONTROL_US_PERSON_REQUIRED: 'Restricted by export-control directive',
  IDENTITY_VERIFICATION_PENDING: 'Identity verification pending',
  DEVICE_NOT_COMPLIANT: 'Device not compliant',
  DEVICE_ASSURANCE_TOO_LOW: 'Hardware-backed device key required',
  GROUP_MEMBERSHIP_REQUIRED: 'Group membership required',
  MODEL_SUSPENDED: 'Model suspended',
  NOT_ENTITLED: 'Not entitled',
  ACCOUNT_SUSPENDED: 'Account suspended',
  ENTITLEMENTS_STALE: 'Access could not be confirmed',
  DEVICE_ENROLMENT_PENDING: 'Device waiting for approval',
  DEVICE_CERTIFICATE_REQUIRED: 'Managed-device certificate required',
  DEVICE_ATTESTATION_FAILED: 'Device key could not be verified',
};

/**
 * What the person can do when the gateway's enrolment policy refuses this device.
 *
 * The gateway sends it as the problem's `message`; the client shows it with the reason's title.
 */
export const enrolmentMessages: Readonly<Record<EnrolmentReason, string>> = {
  DEVICE_ENROLMENT_PENDING:
    'Your organisation approves each new device before it can be used. IT has been asked to approve this one; try again once they have.',
  DEVICE_CERTIFICATE_REQUIRED:
    'Your organisation only admits devices that carry its device certificate. Make sure this computer is enrolled in device management, then try again, or contact IT.',
  DEVICE_ATTESTATION_FAILED:
    'The gateway could not verify that this device’s key is held by its security chip (TPM). Restart Clearance and try again; if it keeps happening, send IT a diagnostics bundle.',
};
