import { base64url, errors } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { EntitlementError } from './errors';
import { documentClaims, makeSigner, signClaims, TEST_ISSUER, type TestSigner } from './test-gateway';
import { verifyEntitlementDocument, type EntitlementVerifyOptions } from './verify';

/** Each refusal that wraps a lower-level failure keeps it as `cause`, for the diagnostics log. */

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
let es256: TestSigner;

beforeAll(async () => {
  es256 = await makeSigner('ES256', 'ent-es256');
});

function options(jwk = es256.publicJwk): EntitlementVerifyOptions {
  return { resolveKey: async () => jwk, issuer: TEST_ISSUER, expectedSub: 's', expectedJkt: 'j', now: NOW };
}

async function causeOf(jws: string, opts = options()): Promise<{ code: string; cause: unknown }> {
  const error = await verifyEntitlementDocument(jws, opts).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(EntitlementError);
  return { code: (error as EntitlementError).code, cause: (error as EntitlementError).cause };
}

describe('verifyEntitlementDocument: causes', () => {
  it('keeps the parse, import and verification errors it refuses for', async () => {
    const jws = await signClaims(es256, documentClaims({ sub: 's', jkt: 'j', ver: 1, nowSeconds: NOW / 1000 }));
    const [h, p, s] = jws.split('.') as [string, string, string];

    const header = await causeOf(`${base64url.encode('not json')}.${p}.${s}`);
    expect(header.code).toBe('MALFORMED');
    expect(header.cause).toBeInstanceOf(SyntaxError);

    const imported = await causeOf(jws, options({ ...es256.publicJwk, x: 'AAAA', y: 'AAAA' }));
    expect(imported.code).toBe('KEY_UNSUITABLE');
    expect(imported.cause).toBeInstanceOf(Error);

    const other = await makeSigner('ES256', 'ent-es256');
    const signature = await causeOf(jws, options(other.publicJwk));
    expect(signature.code).toBe('SIGNATURE');
    expect(signature.cause).toBeInstanceOf(errors.JWSSignatureVerificationFailed);

    const undecodable = await causeOf(`${h}.${p}.A`);
    expect(undecodable.code).toBe('MALFORMED');
    expect(undecodable.cause).toBeInstanceOf(errors.JWSInvalid);
  });
});
