import { createHash, randomUUID } from 'node:crypto';
import { signWithDeviceKey, type JwsSigner } from '../device/jws';

/** `typ` of a DPoP proof (RFC 9449 §4.2). */
export const DPOP_TYP = 'dpop+jwt';

/** What one DPoP proof is for. */
export interface DpopRequest {
  /** HTTP method of the request. */
  readonly htm: string;
  /** Target URI; query and fragment are dropped. */
  readonly htu: string | URL;
  /** The access token sent with the request, hashed into `ath`. */
  readonly accessToken?: string;
  /** The server's latest `DPoP-Nonce`. */
  readonly nonce?: string;
}

/** The `htu` of a request: the target URI without query and fragment (RFC 9449 §4.2). */
export function dpopHtu(target: string | URL): string {
  const url = new URL(target);
  url.search = '';
  url.hash = '';
  return url.href;
}

/** `ath`: base64url of the SHA-256 of the access token's ASCII (RFC 9449 §4.2). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/**
 * Creates a DPoP proof JWT signed by the device key or the session's key (RFC 9449 §4.2): `typ dpop+jwt`, ES256, public
 * `jwk` header, a random `jti`, `iat` from `nowMs`, `htm`, `htu`, and `ath`/`nonce` when given.
 */
export function createDpopProof(key: JwsSigner, request: DpopRequest, nowMs: number): Promise<string> {
  const claims: Record<string, string | number> = {
    jti: randomUUID(),
    htm: request.htm.toUpperCase(),
    htu: dpopHtu(request.htu),
    iat: Math.floor(nowMs / 1000),
  };
  if (request.accessToken !== undefined) claims.ath = accessTokenHash(request.accessToken);
  if (request.nonce !== undefined) claims.nonce = request.nonce;
  return signWithDeviceKey(key, DPOP_TYP, claims);
}
