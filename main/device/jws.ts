import { base64url } from 'jose';
import type { DeviceKey } from './key';

/** What signs a JWS: the device key, or a session key it certified (`main/session/session-key.ts`). */
export type JwsSigner = Pick<DeviceKey, 'publicJwk' | 'sign'>;

const encoder = new TextEncoder();

/**
 * Signs `claims` as a compact JWS (ES256) with the device key (or a session key), its public JWK in the header.
 *
 * Used for the posture report (`posture+jwt`), DPoP proofs (`dpop+jwt`) and the session-key certification
 * (`session-key+jwt`); built by hand so a hardware key that only offers "sign these bytes" works the same
 * as a software one.
 */
export async function signWithDeviceKey(key: JwsSigner, typ: string, claims: object): Promise<string> {
  const header = { typ, alg: 'ES256', jwk: key.publicJwk };
  const signingInput = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}`;
  const signature = await key.sign(encoder.encode(signingInput));
  if (signature.length !== 64) throw new Error('The device key returned a signature that is not ES256 (64 bytes)');
  return `${signingInput}.${base64url.encode(signature)}`;
}
