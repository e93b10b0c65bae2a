import { generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint } from 'jose';
import { SESSION_KEY_TYP, type SessionKeyClaims } from '../../shared/session-key';
import { signWithDeviceKey, type JwsSigner } from '../device/jws';
import type { DevicePublicJwk } from '../device/key';

/** How long a session key's certification is valid: one gateway session token (5 minutes). */
export const SESSION_KEY_LIFETIME_SECONDS = 300;

/** A session's software key: signs its DPoP proofs in place of a slow hardware device key. */
export interface SessionKey extends JwsSigner {
  /** RFC 7638 thumbprint: the session token's `cnf.jkt`. */
  readonly thumbprint: string;
}

const generate = promisify(generateKeyPair);

/**
 * A fresh P-256 key for one gateway session. Held in memory only (never written, never exported):
 * it dies with the session, and a new session makes a new one.
 */
export async function createSessionKey(): Promise<SessionKey> {
  const { privateKey, publicKey } = await generate('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  if (kty !== 'EC' || crv !== 'P-256' || !x || !y) throw new Error('the session key is not a P-256 key');
  const publicJwk: DevicePublicJwk = Object.freeze({ kty, crv, x, y });
  const key: KeyObject = privateKey;
  return Object.freeze({
    publicJwk,
    thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256'),
    sign: async (input: Uint8Array) => new Uint8Array(sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })),
  });
}

/**
 * The device key's certification of `sessionKey` for the session request over the challenge `nonce`
 * (docs/protocol.md, "Session key"): a compact JWS `typ: session-key+jwt`, ES256 by the device key
 * (one hardware signature), its public JWK in the header, claims `{nonce, iat, exp, cnf: {jkt}}`.
 */
export function certifySessionKey(
  deviceKey: JwsSigner,
  sessionKey: Pick<SessionKey, 'thumbprint'>,
  nonce: string,
  nowMs: number,
): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  const claims: SessionKeyClaims = {
    nonce,
    iat,
    exp: iat + SESSION_KEY_LIFETIME_SECONDS,
    cnf: { jkt: sessionKey.thumbprint },
  };
  return signWithDeviceKey(deviceKey, SESSION_KEY_TYP, claims);
}
