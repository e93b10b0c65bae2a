import type { DecisionReason } from '../../shared/reasons';
import type { PostureCheckId } from '../../shared/device';

function parse(iso: string | undefined): Date | undefined {
  if (!iso) return undefined;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** A date and time in the reader's locale and zone, or the raw text when it is not a date. */
export function formatDateTime(iso: string | undefined, fallback = '—'): string {
  const date = parse(iso);
  if (!date) return iso ?? fallback;
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/**
 * When a rule took effect. A directive dated midnight UTC is a calendar date, so it is shown
 * as that date in UTC (not as the evening before in the Americas).
 */
export function formatSince(iso: string | undefined, fallback = '—'): string {
  const date = parse(iso);
  if (!date) return iso ?? fallback;
  const midnightUtc = date.getUTCHours() === 0 && date.getUTCMinutes() === 0 && date.getUTCSeconds() === 0;
  return midnightUtc
    ? new Intl.DateTimeFormat(undefined, { dateStyle: 'long', timeZone: 'UTC' }).format(date)
    : formatDateTime(iso, fallback);
}

/** How long ago a moment was ("3 minutes ago"), relative to `now`. */
export function formatRelative(iso: string | undefined, now: number = Date.now()): string {
  const date = parse(iso);
  if (!date) return '';
  // A moment slightly in the future (clock skew between machines) reads as "now".
  const seconds = Math.min(0, Math.round((date.getTime() - now) / 1000));
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const abs = Math.abs(seconds);
  if (abs < 45) return format.format(0, 'second');
  if (abs < 45 * 60) return format.format(Math.round(seconds / 60), 'minute');
  if (abs < 22 * 3600) return format.format(Math.round(seconds / 3600), 'hour');
  return format.format(Math.round(seconds / 86400), 'day');
}

/** The first and last characters of a long identifier, enough to read out to IT. */
export function shortThumbprint(thumbprint: string | undefined): string {
  if (!thumbprint) return 'not yet created';
  return thumbprint.length <= 16 ? thumbprint : `${thumbprint.slice(0, 8)}…${thumbprint.slice(-6)}`;
}

/** The host of a URL for display, or the text itself when it is not a URL. */
export function hostOf(url: string | undefined): string {
  if (!url) return '';
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

/** Names of the posture checks as people say them. */
export const checkLabels: Readonly<Record<PostureCheckId, string>> = {
  'os-version': 'Operating system version',
  'disk-encryption': 'Disk encryption',
  'screen-lock': 'Screen lock',
  firewall: 'Firewall',
  managed: 'Managed device',
  'app-integrity': 'App integrity',
};

/**
 * What each reason means, for when the policy did not supply a message of its own.
 */
export const reasonExplanations: Readonly<Record<DecisionReason, string>> = {
  EXPORT_CONTROL_US_PERSON_REQUIRED:
    'An export-control directive limits this model to verified US persons. Your account is not verified as one.',
  IDENTITY_VERIFICATION_PENDING: 'Your identity verification has not finished yet. Access follows once it completes.',
  DEVICE_NOT_COMPLIANT: 'This device does not pass the checks this model requires.',
  DEVICE_ASSURANCE_TOO_LOW: 'This model requires a device whose key is protected by hardware (TPM or Secure Enclave).',
  GROUP_MEMBERSHIP_REQUIRED: 'This model is limited to members of a specific group.',
  MODEL_SUSPENDED: 'This model is suspended for everyone by a directive.',
  NOT_ENTITLED: 'No rule grants you access to this model.',
  ACCOUNT_SUSPENDED: 'IT has suspended your account, so no model is available. Contact IT to have it resumed.',
  ENTITLEMENTS_STALE:
    'Clearance could not confirm your access recently, so restricted models stay unavailable until it can reach the gateway.',
  DEVICE_ENROLMENT_PENDING: 'This device is waiting for IT to approve it. Access follows once they have.',
  DEVICE_CERTIFICATE_REQUIRED: 'Your organisation only admits devices that carry its managed-device certificate.',
  DEVICE_ATTESTATION_FAILED: 'The gateway could not verify that this device’s key is held by its security chip (TPM).',
};
