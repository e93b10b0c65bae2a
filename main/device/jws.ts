import { base64url } from 'jose';
import type { DeviceKey } from './key';

const encoder = new TextEncoder();

/**
 * Signs `claims` as a compact JWS (ES256) with the device key, its public JWK in the header.
 *
 * Used for the posture report (`posture+jwt`) and DPoP proofs (`dpop+jwt`); built by hand so a
 * hardware key that only offers "sign these bytes" works the same as a software one.
 */
export async function signWithDeviceKey(key: DeviceKey, typ: string, claims: object): Promise<string> {
  const header = { typ, alg: 'ES256', jwk: key.publicJwk };
  const signingInput = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}`;
  const signature = await key.sign(encoder.encode(signingInput));
  if (signature.length !== 64) throw new Error('The device key returned a signature that is not ES256 (64 bytes)');
  return `${signingInput}.${base64url.encode(signature)}`;
}
