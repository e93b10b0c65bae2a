import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { readStateFile, writeStateFile } from './state-files';

const SIGNING_KEYS = 'signing-keys.json';
const COOKIE_KEYS = 'cookie-keys.json';

/**
 * The identity provider's token signing keys (private JWKs), made at first start and kept.
 *
 * One ES256 key signs ID tokens and JWT access tokens; `kid` is its RFC 7638 thumbprint, so
 * a key that was replaced by hand can never be confused with the old one.
 */
export async function loadOrCreateSigningKeys(stateDir: string): Promise<readonly JWK[]> {
  const stored = await readStateFile(stateDir, SIGNING_KEYS);
  if (stored !== undefined) {
    const keys = parseSigningKeys(stored, stateDir);
    if (keys) return keys;
  }
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const key: JWK = { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'ES256', use: 'sig' };
  await writeStateFile(stateDir, SIGNING_KEYS, `${JSON.stringify({ keys: [key] }, null, 2)}\n`, { secret: true });
  return [key];
}

function parseSigningKeys(text: string, stateDir: string): readonly JWK[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${stateDir}/${SIGNING_KEYS} is not JSON; remove it to make new signing keys`);
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) return undefined;
  for (const key of keys as JWK[]) {
    if (key.kty !== 'EC' || key.crv !== 'P-256' || typeof key.d !== 'string' || typeof key.kid !== 'string') {
      throw new Error(`${stateDir}/${SIGNING_KEYS} holds a key that is not a P-256 private JWK; remove it`);
    }
  }
  return keys as JWK[];
}

/** Keys that sign the provider's cookies, kept so browser sessions survive a restart. */
export async function loadOrCreateCookieKeys(stateDir: string): Promise<readonly string[]> {
  const stored = await readStateFile(stateDir, COOKIE_KEYS);
  if (stored !== undefined) {
    try {
      const keys = JSON.parse(stored) as unknown;
      if (Array.isArray(keys) && keys.length > 0 && keys.every((k) => typeof k === 'string' && k.length >= 32)) {
        return keys as string[];
      }
    } catch {
      // A damaged file is replaced below: the only loss is the browser's sign-in session.
    }
  }
  const keys = [randomBytes(32).toString('base64url')];
  await writeStateFile(stateDir, COOKIE_KEYS, JSON.stringify(keys), { secret: true });
  return keys;
}
