/**
 * Names both the client and the gateway use on the wire: headers, event names, problem types.
 *
 * A fake gateway in tests imports these too, so a name spelled differently on one side
 * cannot hide behind a fake that agrees with it.
 */

/** Response header carrying the audit decision id of an allowed (or refused) call. */
export const DECISION_ID_HEADER = 'x-clearance-decision-id';
/** Request and response header carrying the request id the log and the audit record share. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** Response header with the server nonce for the next DPoP proof (RFC 9449 §8). */
export const DPOP_NONCE_HEADER = 'dpop-nonce';
/** Request header a reconnecting event stream sends with the last id it saw. */
export const LAST_EVENT_ID_HEADER = 'last-event-id';

/** Event names on `GET /v1/events`. */
export const CLIENT_EVENT = {
  /** `{ ver }`: refetch the entitlement document. */
  entitlementsChanged: 'entitlements.changed',
  /** `{ reason, detail }`: this device's session is over; the stream ends. */
  sessionRevoked: 'session.revoked',
} as const;
/** One event name of `GET /v1/events`. */
export type ClientEventName = (typeof CLIENT_EVENT)[keyof typeof CLIENT_EVENT];

/** `reason` of a `session.revoked` event. */
export const SESSION_REVOKED_REASON = {
  deviceRevoked: 'device_revoked',
  accountSuspended: 'account_suspended',
} as const;

/** Prefix of every problem `type` the gateway sends. */
export const PROBLEM_TYPE_BASE = 'urn:clearance:problem:';

/** Problem kinds the gateway sends, by their `type` suffix. */
export const PROBLEM_KINDS = [
  'access-denied',
  'unauthorized',
  'bad-request',
  'unsupported-parameter',
  'not-found',
  'model-not-found',
  'unsupported-media-type',
  'payload-too-large',
  'device-revoked',
  'device-attestation-failed',
  'device-enrolment-pending',
  'device-certificate-required',
  'session-revoked',
  'account-suspended',
  'upstream-error',
  'upstream-timeout',
  'too-many-requests',
  'internal-error',
] as const;
/** One problem kind (`type` without the prefix). */
export type ProblemKind = (typeof PROBLEM_KINDS)[number];

/** The full problem `type` URI of a kind. */
export function problemType(kind: ProblemKind): string {
  return `${PROBLEM_TYPE_BASE}${kind}`;
}
