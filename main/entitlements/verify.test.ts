import { base64url, CompactSign, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { EntitlementError, type EntitlementErrorCode } from './errors';
import { documentClaims, makeSigner, signClaims, TEST_ISSUER, type TestSigner } from './test-gateway';
import { verifyEntitlementDocument, type EntitlementKeyResolver, type EntitlementVerifyOptions } from './verify';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const NOW_S = NOW / 1000;
const SUB = 'user-ada';
const JKT = 'device-thumbprint-1';

let es256: TestSigner;
let eddsa: TestSigner;
let other: TestSigner;

function resolverFor(...keys: JWK[]): EntitlementKeyResolver {
  return async (kid) => {
    const key = keys.find((candidate) => candidate.kid === kid);
    if (!key) throw new EntitlementError('KEY_UNKNOWN', `unknown kid ${kid}`);
    return key;
  };
}

function options(overrides: Partial<EntitlementVerifyOptions> = {}): EntitlementVerifyOptions {
  return {
    resolveKey: resolverFor(es256.publicJwk, eddsa.publicJwk),
    issuer: TEST_ISSUER,
    expectedSub: SUB,
    expectedJkt: JKT,
    now: NOW,
    ...overrides,
  };
}

function claims(overrides: Record<string, unknown> = {}) {
  return documentClaims({ sub: SUB, jkt: JKT, ver: 7, nowSeconds: NOW_S }, overrides);
}

async function expectRejected(jws: string, code: EntitlementErrorCode, opts = options()): Promise<EntitlementError> {
  const error = await verifyEntitlementDocument(jws, opts).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(EntitlementError);
  expect((error as EntitlementError).code).toBe(code);
  expect((error as EntitlementError).message.length).toBeGreaterThan(20);
  return error as EntitlementError;
}

/** Changes one byte of a decoded JWS part and re-encodes it. */
function changeOneByte(jws: string, part: 1 | 2, at: (bytes: Uint8Array) => number): string {
  const parts = jws.split('.');
  const bytes = base64url.decode(parts[part]!);
  const index = at(bytes);
  bytes[index] = bytes[index]! ^ 0x01;
  parts[part] = base64url.encode(bytes);
  return parts.join('.');
}

beforeAll(async () => {
  es256 = await makeSigner('ES256', 'ent-es256');
  eddsa = await makeSigner('EdDSA', 'ent-eddsa');
  other = await makeSigner('ES256', 'attacker');
});

describe('verifyEntitlementDocument', () => {
  it('accepts a proper ES256 document and returns its parsed claims', async () => {
    const jws = await signClaims(es256, claims());
    const verified = await verifyEntitlementDocument(jws, options());
    expect(verified.kid).toBe('ent-es256');
    expect(verified.alg).toBe('ES256');
    expect(verified.document.ver).toBe(7);
    expect(verified.document.models.map((model) => model.status)).toEqual(['denied', 'allowed', 'hidden']);
    expect(verified.document.models[0]?.reason).toBe('EXPORT_CONTROL_US_PERSON_REQUIRED');
  });

  it('accepts an EdDSA document', async () => {
    const verified = await verifyEntitlementDocument(await signClaims(eddsa, claims()), options());
    expect(verified.alg).toBe('EdDSA');
  });

  it('accepts the application/ form of the typ', async () => {
    const jws = await signClaims(es256, claims(), { typ: 'application/entitlements+jwt' });
    await expect(verifyEntitlementDocument(jws, options())).resolves.toMatchObject({ kid: 'ent-es256' });
  });

  it('rejects a document with one byte of its payload changed', async () => {
    const jws = await signClaims(es256, claims());
    const payload = new TextDecoder().decode(base64url.decode(jws.split('.')[1]!));
    const tampered = changeOneByte(jws, 1, () => payload.indexOf('"denied"') + 1);
    const error = await expectRejected(tampered, 'SIGNATURE');
    expect(error.message).toMatch(/altered or not issued by this gateway/);
  });

  it('rejects a document with one byte of its signature changed', async () => {
    const jws = await signClaims(es256, claims());
    await expectRejected(
      changeOneByte(jws, 2, (bytes) => bytes.length >> 1),
      'SIGNATURE',
    );
    const ed = await signClaims(eddsa, claims());
    await expectRejected(
      changeOneByte(ed, 2, () => 3),
      'SIGNATURE',
    );
  });

  it('rejects a document signed by a key the gateway did not publish under that kid', async () => {
    const forged = await signClaims(other, claims(), { kid: 'ent-es256' });
    await expectRejected(forged, 'SIGNATURE');
  });

  it('rejects an unsigned (alg none) document', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'entitlements+jwt', kid: 'ent-es256' }));
    const payload = base64url.encode(JSON.stringify(claims()));
    const error = await expectRejected(`${header}.${payload}.`, 'ALGORITHM');
    expect(error.message).toMatch(/"none"/);
  });

  it('rejects an HMAC document keyed with the public key (algorithm confusion)', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(es256.publicJwk));
    const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
      .setProtectedHeader({ alg: 'HS256', typ: 'entitlements+jwt', kid: 'ent-es256' })
      .sign(secret);
    await expectRejected(jws, 'ALGORITHM');
  });

  it('rejects a document whose alg does not fit the key its kid names', async () => {
    const jws = await signClaims(eddsa, claims(), { kid: 'ent-es256' });
    await expectRejected(jws, 'KEY_UNSUITABLE');
  });

  it('rejects a published private key', async () => {
    const privateJwk = { ...es256.publicJwk, d: 'AAAA' };
    await expectRejected(
      await signClaims(es256, claims()),
      'KEY_UNSUITABLE',
      options({ resolveKey: resolverFor(privateJwk) }),
    );
  });

  it('rejects other token types signed by a trusted key', async () => {
    await expectRejected(await signClaims(es256, claims(), { typ: 'at+jwt' }), 'TYPE');
    await expectRejected(await signClaims(es256, claims(), { typ: 'JWT' }), 'TYPE');
    await expectRejected(await signClaims(es256, claims(), { typ: undefined }), 'TYPE');
  });

  it('rejects a document without a kid', async () => {
    await expectRejected(await signClaims(es256, claims(), { kid: undefined }), 'KEY_UNKNOWN');
  });

  it('rejects a document for another audience', async () => {
    const error = await expectRejected(await signClaims(es256, claims({ aud: 'clearance-web' })), 'AUDIENCE');
    expect(error.message).toContain('clearance-web');
    await expectRejected(await signClaims(es256, claims({ aud: ['clearance-desktop', 'x'] })), 'AUDIENCE');
  });

  it('rejects a document from another issuer', async () => {
    await expectRejected(await signClaims(es256, claims({ iss: 'https://evil.test' })), 'ISSUER');
  });

  it('rejects a document for another user', async () => {
    await expectRejected(await signClaims(es256, claims({ sub: 'user-grace' })), 'SUBJECT');
  });

  it('rejects a document bound to another device key', async () => {
    const error = await expectRejected(
      await signClaims(es256, claims({ cnf: { jkt: 'someone-else' } })),
      'DEVICE_BINDING',
    );
    expect(error.message).toMatch(/different device key/);
  });

  it('rejects a document without iat or exp', async () => {
    await expectRejected(await signClaims(es256, claims({ iat: undefined })), 'CLAIMS');
    await expectRejected(await signClaims(es256, claims({ exp: undefined })), 'CLAIMS');
  });

  it('rejects an expired document but tolerates small clock skew', async () => {
    await expectRejected(await signClaims(es256, claims({ iat: NOW_S - 700, exp: NOW_S - 60 })), 'EXPIRED');
    const skewed = await signClaims(es256, claims({ iat: NOW_S - 600, exp: NOW_S - 5 }));
    await expect(verifyEntitlementDocument(skewed, options())).resolves.toBeDefined();
  });

  it('accepts an expired document when asked to, for stale display of the cache', async () => {
    const jws = await signClaims(es256, claims({ iat: NOW_S - 7200, exp: NOW_S - 3600 }));
    await expect(verifyEntitlementDocument(jws, options({ allowExpired: true }))).resolves.toBeDefined();
  });

  it('rejects a document issued in the future', async () => {
    await expectRejected(await signClaims(es256, claims({ iat: NOW_S + 300, exp: NOW_S + 900 })), 'ISSUED_IN_FUTURE');
  });

  it('rejects a document whose ver is lower than one seen, and accepts the same ver again', async () => {
    const jws = await signClaims(es256, claims({ ver: 6 }));
    const error = await expectRejected(jws, 'VERSION_REPLAYED', options({ highestSeenVer: 7 }));
    expect(error.message).toMatch(/version 6, older than version 7/);
    await expect(verifyEntitlementDocument(jws, options({ highestSeenVer: 6 }))).resolves.toBeDefined();
  });

  it('names the bad field of a document with the wrong shape', async () => {
    const error = await expectRejected(
      await signClaims(es256, claims({ models: [{ id: 'x', name: 'X', status: 'maybe' }] })),
      'CLAIMS',
    );
    expect(error.message).toContain('models.0.status');
  });

  it('rejects text that is not a compact JWS', async () => {
    await expectRejected('<html>Bad gateway</html>', 'MALFORMED');
    await expectRejected('a.b', 'MALFORMED');
    await expectRejected(`${base64url.encode('not json')}.e30.sig`, 'MALFORMED');
  });

  it('rejects a part with a character outside base64url, at its start or at its end', async () => {
    const [header, payload, signature] = (await signClaims(es256, claims())).split('.') as [string, string, string];
    const shape = 'The gateway did not send an entitlement document in compact JWS form (three base64url parts).';
    for (const jws of [`${header}.${payload}.+${signature}`, `${header}.${payload}.${signature}=`]) {
      expect((await expectRejected(jws, 'MALFORMED')).message).toBe(shape);
    }
  });

  it('rejects critical header extensions it does not understand', async () => {
    const jws = await signClaims(es256, claims(), { crit: ['b64'], b64: true });
    await expectRejected(jws, 'MALFORMED');
  });
});
