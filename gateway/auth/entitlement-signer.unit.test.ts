import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { ENTITLEMENTS_AUDIENCE, ENTITLEMENTS_TYP } from '../../shared/entitlements';
import type { EntitlementContent } from '../access';
import { ENTITLEMENTS_LIFETIME_SECONDS, EntitlementSigner } from './entitlement-signer';
import { loadOrCreateKey, type SigningKey } from './keys';

const ISSUER = 'https://gw.example';

let dir: string;
let key: SigningKey;
let otherKey: SigningKey;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'entitlement-signer-'));
  key = await loadOrCreateKey(join(dir, 'entitlements.jwk.json'));
  otherKey = await loadOrCreateKey(join(dir, 'other.jwk.json'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const content = (change: Partial<EntitlementContent> = {}): EntitlementContent => ({
  aud: ENTITLEMENTS_AUDIENCE,
  sub: 'alice',
  ver: 3,
  cnf: { jkt: 'j'.repeat(43) },
  device: { id: 'device-1', assurance: 'hardware', compliant: true },
  models: [{ id: 'gpt-x', name: 'GPT X', status: 'allowed' }],
  ...change,
});

describe('EntitlementSigner', () => {
  it('signs the content with iss, iat (whole seconds, rounded down) and exp ten minutes later', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_800_000_000_999);
    const { jws, document } = await new EntitlementSigner(key, ISSUER).sign(content());
    expect(ENTITLEMENTS_LIFETIME_SECONDS).toBe(600);
    const expected = { ...content(), iss: ISSUER, iat: 1_800_000_000, exp: 1_800_000_600 };
    expect(document).toEqual(expected);
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', typ: ENTITLEMENTS_TYP, kid: key.kid });
    const { payload } = await jwtVerify(jws, key.publicKey, {
      algorithms: ['ES256'],
      typ: ENTITLEMENTS_TYP,
      issuer: ISSUER,
      audience: ENTITLEMENTS_AUDIENCE,
      currentDate: new Date(1_800_000_001_000),
    });
    expect(payload).toEqual(expected);
  });

  it('signs with its own key only: another key does not verify the document', async () => {
    const { jws } = await new EntitlementSigner(key, ISSUER).sign(content());
    await expect(jwtVerify(jws, otherKey.publicKey)).rejects.toMatchObject({
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  it('refuses to sign content the client would refuse, and signs nothing', async () => {
    const signer = new EntitlementSigner(key, ISSUER);
    const sign = vi.spyOn(SignJWT.prototype, 'sign');
    await expect(signer.sign(content({ aud: 'someone-else' as typeof ENTITLEMENTS_AUDIENCE }))).rejects.toMatchObject({
      name: 'ZodError',
      issues: [expect.objectContaining({ path: ['aud'] })],
    });
    expect(sign).not.toHaveBeenCalled();
  });

  it('drops what the schema does not know rather than signing it', async () => {
    const sign = vi.spyOn(SignJWT.prototype, 'sign');
    const { jws, document } = await new EntitlementSigner(key, ISSUER).sign({
      ...content(),
      extra: 'smuggled',
    } as EntitlementContent);
    expect(sign).toHaveBeenCalledTimes(1);
    expect(document).not.toHaveProperty('extra');
    const { payload } = await jwtVerify(jws, key.publicKey);
    expect(payload).not.toHaveProperty('extra');
  });
});
