import { generateKeyPairSync, sign } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { DeviceKey, DevicePublicJwk } from '../device/key';

/**
 * A throwaway in-memory software device key for tests (never persisted).
 */
export async function generateTestDeviceKey(): Promise<DeviceKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const publicJwk: DevicePublicJwk = { kty: 'EC', crv: 'P-256', x: String(jwk.x), y: String(jwk.y) };
  const thumbprint = await calculateJwkThumbprint(publicJwk, 'sha256');
  return {
    deviceId: thumbprint,
    thumbprint,
    publicJwk,
    assurance: 'software',
    createdAt: new Date(0).toISOString(),
    sign: async (input) => new Uint8Array(sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' })),
  };
}
