import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { SESSION_KEY_MAX_LIFETIME_SECONDS, SESSION_KEY_TYP, SessionKeyClaims } from '../../../shared/session-key';
import { AttestationError } from './refusal';

/** How far a certification's `iat` may be from now (as the posture report's). */
const MAX_SKEW_SECONDS = 120;

/** What the session request must match. */
export interface SessionKeyExpectations {
  /** The device challenge nonce the request's posture report carried (already consumed). */
  readonly nonce: string;
  /** Thumbprint of the key that signed the request's DPoP proof: the session key. */
  readonly proofJkt: string;
  /** Unix seconds. */
  readonly now?: number;
}

/** A session-key certification whose signature and claims hold; who signed it is checked by attestation. */
export interface CertifiedSessionKey {
  /** The certifying key: the device key, which the same request's TPM attestation must prove. */
  readonly deviceJwk: JWK;
  readonly deviceJkt: string;
  /** The session key's thumbprint (= the DPoP proof's). */
  readonly sessionJkt: string;
  /** Unix seconds after which the certification, and so the session token, ends. */
  readonly exp: number;
}

/**
 * Verifies a session-key certification (`typ: session-key+jwt`, docs/protocol.md "Session key"): ES256
 * by the P-256 key in its `jwk` header, claims exactly {@link SessionKeyClaims}, `nonce` = this request's
 * challenge, `iat` within 120 s of now, not expired, valid at most 900 s, and `cnf.jkt` = the DPoP proof's
 * key (the request itself proves possession of the session key), which must not be the certifying key.
 *
 * Throws {@link AttestationError} at step `session-key`. It does not make the certifying key trusted:
 * the caller must verify, in the same request, a TPM attestation of exactly that key.
 */
export async function verifySessionKeyCertification(
  value: unknown,
  expected: SessionKeyExpectations,
): Promise<CertifiedSessionKey> {
  const refuse = (detail: string) => new AttestationError('session-key', detail);
  if (typeof value !== 'string' || value.length === 0 || value.length > 8192) {
    throw refuse('session_key must be a compact JWS (typ session-key+jwt)');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(value);
  } catch {
    throw refuse('session_key is not a JWS');
  }
  if (header.typ !== SESSION_KEY_TYP) throw refuse(`session_key typ must be "${SESSION_KEY_TYP}"`);
  if (header.alg !== 'ES256') throw refuse('session_key alg must be ES256 (a TPM P-256 device key)');
  if (header.crit !== undefined || 'b64' in header) throw refuse('session_key uses unsupported header parameters');
  const jwk = header.jwk;
  if (!jwk || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw refuse('session_key must name the certifying P-256 device key in its jwk header');
  }
  if ('d' in jwk) throw refuse('session_key jwk holds private key material');
  const deviceJwk: JWK = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  let payload: Uint8Array;
  try {
    // Stryker disable next-line ObjectLiteral: the header's alg was refused above unless ES256 and the key is imported for ES256 only, so the allow-list repeats that check (kept as the library's own guard)
    payload = (await compactVerify(value, await importJWK(deviceJwk, 'ES256'), { algorithms: ['ES256'] })).payload;
  } catch {
    throw refuse('session_key signature does not verify with the device key it names');
  }
  let claims: SessionKeyClaims;
  try {
    claims = SessionKeyClaims.parse(JSON.parse(new TextDecoder().decode(payload)));
  } catch {
    throw refuse('session_key claims must be exactly {nonce, iat, exp, cnf: {jkt}}');
  }
  const now = expected.now ?? Math.floor(Date.now() / 1000);
  if (claims.nonce !== expected.nonce) throw refuse('session_key is over another nonce than this session request');
  if (Math.abs(now - claims.iat) > MAX_SKEW_SECONDS) throw refuse('session_key iat is too far from the current time');
  if (claims.exp <= now) throw refuse('session_key has expired');
  if (claims.exp <= claims.iat || claims.exp - claims.iat > SESSION_KEY_MAX_LIFETIME_SECONDS) {
    throw refuse(`session_key must be valid for at most ${SESSION_KEY_MAX_LIFETIME_SECONDS} s after iat`);
  }
  if (claims.cnf.jkt !== expected.proofJkt) {
    throw refuse('session_key certifies another key than the one that signed the DPoP proof');
  }
  const deviceJkt = await calculateJwkThumbprint(deviceJwk, 'sha256');
  if (deviceJkt === claims.cnf.jkt) throw refuse('session_key certifies the device key itself');
  return { deviceJwk, deviceJkt, sessionJkt: claims.cnf.jkt, exp: claims.exp };
}
