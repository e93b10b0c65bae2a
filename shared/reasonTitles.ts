import type { DecisionReason } from './reasons';

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
};
