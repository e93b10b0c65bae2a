/** Why an entitlement document (or the keys to check it) was not accepted. */
export type EntitlementErrorCode =
  | 'MALFORMED'
  | 'TYPE'
  | 'ALGORITHM'
  | 'KEY_UNKNOWN'
  | 'KEY_UNSUITABLE'
  | 'KEYS_UNAVAILABLE'
  | 'SIGNATURE'
  | 'ISSUER'
  | 'AUDIENCE'
  | 'EXPIRED'
  | 'ISSUED_IN_FUTURE'
  | 'CLAIMS'
  | 'SUBJECT'
  | 'DEVICE_BINDING'
  | 'VERSION_REPLAYED'
  | 'FETCH_FAILED';

/**
 * A document, key set or fetch the entitlement service refused, with a sentence a person can act on.
 *
 * `code` is for code and tests; `message` is what logs, diagnostics and the My access page show.
 */
export class EntitlementError extends Error {
  constructor(
    readonly code: EntitlementErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EntitlementError';
  }
}
