import { base64url, exportJWK, generateKeyPair, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { EntitlementError, type EntitlementErrorCode } from './errors';
import { documentClaims, makeSigner, signClaims, TEST_ISSUER, type TestSigner } from './test-gateway';
import {
  assertKeyFitsAlgorithm,
  verifyEntitlementDocument,
  type EntitlementKeyResolver,
  type EntitlementVerifyOptions,
} from './verify';

/**
 * The exact refusal each check of `verify.ts` gives, at its boundaries (issue 16: every check is
 * proven by a test that fails without it). `verify.test.ts` covers the main cases by code; these
 * pin the one check that refuses, by its message, and that the key was never asked for when the
 * document is refused before that.
 */

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const NOW_S = NOW / 1000;
const SUB = 'user-ada';
const JKT = 'device-thumbprint-1';
const COMPACT = 'The gateway did not send an entitlement document in compact JWS form (three base64url parts).';

let es256: TestSigner;
let eddsa: TestSigner;

/** The public key without `kid`, `alg` and `use`: what a gateway that publishes bare keys serves. */
function bare(jwk: JWK): JWK {
  const { kid: _kid, alg: _alg, use: _use, ...rest } = jwk;
  return rest;
}

/** A resolver that always answers `jwk` and records what it was asked. */
function answering(jwk: JWK): EntitlementKeyResolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (kid: string) => {
    asked.push(kid);
    return jwk;
  };
  return Object.assign(resolve, { asked });
}

function options(overrides: Partial<EntitlementVerifyOptions> = {}): EntitlementVerifyOptions {
  return {
    resolveKey: async (kid) => {
      const key = [es256.publicJwk, eddsa.publicJwk].find((candidate) => candidate.kid === kid);
      if (!key) throw new EntitlementError('KEY_UNKNOWN', `unknown kid ${kid}`);
      return key;
    },
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

/** Signs any header and payload bytes as they are (jose's signer refuses some headers these tests need). */
async function signRaw(signer: TestSigner, header: Record<string, unknown>, payload: string): Promise<string> {
  const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(payload)}`;
  const algorithm = signer.alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
  const signature = await crypto.subtle.sign(algorithm, signer.privateKey, new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(signature))}`;
}

function header(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { alg: 'ES256', typ: 'entitlements+jwt', kid: 'ent-es256', ...overrides };
}

async function refusal(jws: string, opts = options()): Promise<EntitlementError> {
  const error = await verifyEntitlementDocument(jws, opts).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(EntitlementError);
  return error as EntitlementError;
}

async function expectRefused(jws: string, code: EntitlementErrorCode, message: string, opts = options()) {
  const error = await refusal(jws, opts);
  expect({ code: error.code, message: error.message }).toEqual({ code, message });
}

beforeAll(async () => {
  es256 = await makeSigner('ES256', 'ent-es256');
  eddsa = await makeSigner('EdDSA', 'ent-eddsa');
});

describe('verifyEntitlementDocument: the compact form', () => {
  it('refuses anything but three base64url parts with a header and a payload, before asking for a key', async () => {
    const good = await signClaims(es256, claims());
    const [h, p, s] = good.split('.') as [string, string, string];
    const resolveKey = answering(es256.publicJwk);
    for (const text of [
      '<html>Bad gateway</html>',
      `${h}.${p}`,
      `${h}.${p}.${s}.${s}`,
      `.${p}.${s}`,
      `${h}..${s}`,
      `${h}.${p}.${s.slice(0, 10)}+${s.slice(11)}`,
      `${h}.${p}.${s}=`,
      `${h}.${p} .${s}`,
      `${h}/.${p}.${s}`,
    ]) {
      await expectRefused(text, 'MALFORMED', COMPACT, options({ resolveKey }));
    }
    expect(resolveKey.asked).toEqual([]);
  });

  it('accepts a document with white space around it, and returns it without', async () => {
    const jws = await signClaims(es256, claims());
    const verified = await verifyEntitlementDocument(` ${jws}\r\n`, options());
    expect(verified.jws).toBe(jws);
    expect(verified).toMatchObject({ kid: 'ent-es256', alg: 'ES256', document: { sub: SUB, ver: 7 } });
  });

  it('refuses a header that is not JSON, not UTF-8 or not an object', async () => {
    const rest = (await signClaims(es256, claims())).split('.').slice(1).join('.');
    const notJson = "The entitlement document's header is not valid base64url JSON.";
    const notObject = "The entitlement document's header is not a JSON object.";
    await expectRefused(`${base64url.encode('not json')}.${rest}`, 'MALFORMED', notJson);
    // `{"typ":"<0xff>"}`: a decoder that replaced the bad byte would read a typ and refuse it as TYPE.
    const latin1 = new Uint8Array([...new TextEncoder().encode('{"typ":"'), 0xff, ...new TextEncoder().encode('"}')]);
    await expectRefused(`${base64url.encode(latin1)}.${rest}`, 'MALFORMED', notJson);
    for (const json of ['null', '[]', '[{"typ":"entitlements+jwt"}]', '7', '"entitlements+jwt"']) {
      await expectRefused(`${base64url.encode(json)}.${rest}`, 'MALFORMED', notObject);
    }
  });

  it('refuses a signed payload that is not JSON or not an object', async () => {
    await expectRefused(
      await signRaw(es256, header(), 'not json'),
      'MALFORMED',
      "The entitlement document's payload is not valid base64url JSON.",
    );
    for (const json of ['null', '[]', '7']) {
      await expectRefused(
        await signRaw(es256, header(), json),
        'MALFORMED',
        "The entitlement document's payload is not a JSON object.",
      );
    }
  });

  it('refuses a signature that is not base64url-decodable as MALFORMED, not as a bad signature', async () => {
    const [h, p] = (await signClaims(es256, claims())).split('.') as [string, string];
    const error = await refusal(`${h}.${p}.A`);
    expect(error.code).toBe('MALFORMED');
    expect(error.message).toMatch(/^The entitlement document could not be verified: ./);
  });
});

describe('verifyEntitlementDocument: the header', () => {
  it('compares the typ case-insensitively, with or without application/', async () => {
    for (const typ of ['ENTITLEMENTS+JWT', 'Application/Entitlements+Jwt', 'application/entitlements+jwt']) {
      await expect(
        verifyEntitlementDocument(await signClaims(es256, claims(), { typ }), options()),
      ).resolves.toMatchObject({ kid: 'ent-es256' });
    }
  });

  it('names the token type it refuses', async () => {
    const refused = (typ: string) =>
      `The signed token is a "${typ}" token, not an entitlement document (entitlements+jwt).`;
    await expectRefused(await signClaims(es256, claims(), { typ: 'at+jwt' }), 'TYPE', refused('at+jwt'));
    await expectRefused(
      await signClaims(es256, claims(), { typ: 'application/at+jwt' }),
      'TYPE',
      refused('application/at+jwt'),
    );
    await expectRefused(await signClaims(es256, claims(), { typ: undefined }), 'TYPE', refused('untyped'));
    await expectRefused(await signRaw(es256, header({ typ: 7 }), JSON.stringify(claims())), 'TYPE', refused('7'));
    await expectRefused(
      await signRaw(es256, header({ typ: ['entitlements+jwt'] }), JSON.stringify(claims())),
      'TYPE',
      refused('entitlements+jwt'),
    );
  });

  it('names the algorithm it refuses and the ones it allows', async () => {
    for (const alg of ['none', 'HS256', 'RS256', 'ES384']) {
      await expectRefused(
        await signRaw(es256, header({ alg }), JSON.stringify(claims())),
        'ALGORITHM',
        `The entitlement document is signed with "${alg}", which is not allowed (only ES256, EdDSA).`,
      );
    }
    await expectRefused(
      await signRaw(es256, header({ alg: undefined }), JSON.stringify(claims())),
      'ALGORITHM',
      'The entitlement document is signed with "undefined", which is not allowed (only ES256, EdDSA).',
    );
  });

  it('refuses a crit or a b64 header on its own', async () => {
    const refused = 'The entitlement document uses JWS extensions (crit / b64) that are not allowed.';
    await expectRefused(
      await signRaw(es256, header({ crit: ['exp'], exp: NOW_S + 600 }), JSON.stringify(claims())),
      'MALFORMED',
      refused,
    );
    // Without crit, jose ignores b64 and the signature verifies: only this check refuses it.
    await expectRefused(await signRaw(es256, header({ b64: true }), JSON.stringify(claims())), 'MALFORMED', refused);
  });

  it('refuses an empty or non-string kid without asking for a key', async () => {
    const resolveKey = answering(es256.publicJwk);
    for (const kid of ['', 7, ['ent-es256']]) {
      await expectRefused(
        await signRaw(es256, header({ kid }), JSON.stringify(claims())),
        'KEY_UNKNOWN',
        'The entitlement document does not name its signing key (no kid).',
        options({ resolveKey }),
      );
    }
    expect(resolveKey.asked).toEqual([]);
  });
});

describe('verifyEntitlementDocument: the key the kid names', () => {
  it('accepts a bare public key (no kid, alg or use), and one whose key_ops allow verify', async () => {
    const cases: [TestSigner, JWK][] = [
      [es256, bare(es256.publicJwk)],
      [eddsa, bare(eddsa.publicJwk)],
      [es256, { ...es256.publicJwk, key_ops: ['verify'] }],
    ];
    for (const [signer, jwk] of cases) {
      const jws = await signClaims(signer, claims());
      await expect(verifyEntitlementDocument(jws, options({ resolveKey: answering(jwk) }))).resolves.toMatchObject({
        alg: signer.alg,
      });
    }
  });

  it('refuses a key of the wrong type or curve for the alg, naming it', async () => {
    const p384 = { ...(await exportJWK((await generateKeyPair('ES384')).publicKey)), kid: 'ent-es256' };
    const x25519 = {
      ...(await exportJWK((await generateKeyPair('ECDH-ES', { crv: 'X25519' })).publicKey)),
      kid: 'ent-eddsa',
    };
    const es = await signClaims(es256, claims());
    const ed = await signClaims(eddsa, claims());
    const cases: [string, JWK, string][] = [
      [es, p384, 'The gateway key "ent-es256" (EC P-384) cannot verify an ES256 signature.'],
      [
        es,
        { ...es256.publicJwk, kty: 'OKP' },
        'The gateway key "ent-es256" (OKP P-256) cannot verify an ES256 signature.',
      ],
      [ed, x25519, 'The gateway key "ent-eddsa" (OKP X25519) cannot verify an EdDSA signature.'],
      [
        ed,
        { ...eddsa.publicJwk, kty: 'EC' },
        'The gateway key "ent-eddsa" (EC Ed25519) cannot verify an EdDSA signature.',
      ],
      [es, { kty: 'oct', k: 'c2VjcmV0' }, 'The gateway key without a kid (oct ) cannot verify an ES256 signature.'],
      [es, {}, 'The gateway key without a kid (? ) cannot verify an ES256 signature.'],
    ];
    for (const [jws, jwk, message] of cases) {
      await expectRefused(jws, 'KEY_UNSUITABLE', message, options({ resolveKey: answering(jwk) }));
    }
  });

  it('refuses a key published for another alg, for encryption, or without verify in its key_ops', async () => {
    const jws = await signClaims(es256, claims());
    const cases: [JWK, string][] = [
      [{ ...es256.publicJwk, alg: 'ES384' }, 'The gateway key "ent-es256" is for ES384, not ES256.'],
      [{ ...es256.publicJwk, alg: 'EdDSA' }, 'The gateway key "ent-es256" is for EdDSA, not ES256.'],
      [{ ...es256.publicJwk, use: 'enc' }, 'The gateway key "ent-es256" is for "enc", not signatures.'],
      [{ ...es256.publicJwk, key_ops: ['sign'] }, 'The gateway key "ent-es256" may not be used to verify signatures.'],
      [{ ...es256.publicJwk, key_ops: [] }, 'The gateway key "ent-es256" may not be used to verify signatures.'],
      [
        { ...es256.publicJwk, d: 'AAAA' },
        'The gateway key "ent-es256" is a private key; only public keys are trusted.',
      ],
    ];
    for (const [jwk, message] of cases) {
      await expectRefused(jws, 'KEY_UNSUITABLE', message, options({ resolveKey: answering(jwk) }));
      expect(() => assertKeyFitsAlgorithm(jwk, 'ES256')).toThrow(message);
    }
  });

  it('refuses a key that cannot be imported', async () => {
    await expectRefused(
      await signClaims(es256, claims()),
      'KEY_UNSUITABLE',
      'The gateway key "ent-es256" could not be imported for ES256.',
      options({ resolveKey: answering({ ...es256.publicJwk, x: 'AAAA', y: 'AAAA' }) }),
    );
  });
});

describe('verifyEntitlementDocument: the claims', () => {
  it('names the issuer and the audience it refuses', async () => {
    await expectRefused(
      await signClaims(es256, claims({ iss: 'https://evil.test' })),
      'ISSUER',
      'The entitlement document was issued by "https://evil.test", not by this gateway ("https://gateway.test").',
    );
    await expectRefused(
      await signClaims(es256, claims({ aud: ['clearance-desktop'] })),
      'AUDIENCE',
      'The entitlement document is meant for ["clearance-desktop"], not for "clearance-desktop".',
    );
  });

  it('refuses an iat or exp that is missing, not a number or not finite', async () => {
    const noTime = (claim: string) => `The entitlement document has no valid "${claim}" time.`;
    await expectRefused(await signClaims(es256, claims({ iat: undefined })), 'CLAIMS', noTime('iat'));
    await expectRefused(await signClaims(es256, claims({ iat: String(NOW_S - 10) })), 'CLAIMS', noTime('iat'));
    await expectRefused(await signClaims(es256, claims({ exp: undefined })), 'CLAIMS', noTime('exp'));
    await expectRefused(await signClaims(es256, claims({ exp: String(NOW_S + 600) })), 'CLAIMS', noTime('exp'));
    // JSON has no Infinity, but 1e999 parses to it.
    const infinite = (claim: string) => JSON.stringify(claims({ [claim]: 4242 })).replace('4242', '1e999');
    await expectRefused(await signRaw(es256, header(), infinite('iat')), 'CLAIMS', noTime('iat'));
    await expectRefused(await signRaw(es256, header(), infinite('exp')), 'CLAIMS', noTime('exp'));
  });

  it('tolerates 30 s of clock skew on iat and nbf, and not a second more', async () => {
    const valid = (extra: Record<string, unknown>) => signClaims(es256, claims({ exp: NOW_S + 600, ...extra }));
    await expect(verifyEntitlementDocument(await valid({ iat: NOW_S + 30 }), options())).resolves.toBeDefined();
    await expectRefused(
      await valid({ iat: NOW_S + 31 }),
      'ISSUED_IN_FUTURE',
      "The entitlement document was issued at 2026-11-26T12:00:31.000Z, after this computer's time; check the system clock.",
    );
    await expect(verifyEntitlementDocument(await valid({ nbf: NOW_S + 30 }), options())).resolves.toBeDefined();
    await expectRefused(
      await valid({ nbf: NOW_S + 31 }),
      'ISSUED_IN_FUTURE',
      'The entitlement document is not valid yet; check the system clock.',
    );
  });

  it('uses the leeway it is given instead of 30 s', async () => {
    const early = await signClaims(es256, claims({ iat: NOW_S + 1 }));
    await expectRefused(
      early,
      'ISSUED_IN_FUTURE',
      "The entitlement document was issued at 2026-11-26T12:00:01.000Z, after this computer's time; check the system clock.",
      options({ leewaySeconds: 0 }),
    );
    const late = await signClaims(es256, claims({ iat: NOW_S + 100 }));
    await expect(verifyEntitlementDocument(late, options({ leewaySeconds: 120 }))).resolves.toBeDefined();
    const expired = await signClaims(es256, claims({ iat: NOW_S - 600, exp: NOW_S - 100 }));
    await expect(verifyEntitlementDocument(expired, options({ leewaySeconds: 120 }))).resolves.toBeDefined();
    await expect(refusal(expired, options({ leewaySeconds: 99 }))).resolves.toMatchObject({ code: 'EXPIRED' });
  });

  it('refuses a document that expires when or before it was issued', async () => {
    const message = 'The entitlement document expires before it was issued.';
    await expectRefused(await signClaims(es256, claims({ iat: NOW_S - 10, exp: NOW_S - 10 })), 'CLAIMS', message);
    await expectRefused(await signClaims(es256, claims({ iat: NOW_S - 10, exp: NOW_S - 11 })), 'CLAIMS', message);
    await expect(
      verifyEntitlementDocument(await signClaims(es256, claims({ iat: NOW_S - 10, exp: NOW_S - 9 })), options()),
    ).resolves.toBeDefined();
  });

  it('refuses a document 30 s past its exp, and accepts it a second before', async () => {
    await expectRefused(
      await signClaims(es256, claims({ iat: NOW_S - 600, exp: NOW_S - 30 })),
      'EXPIRED',
      'The entitlement document expired at 2026-11-26T11:59:30.000Z; check the system clock if this repeats.',
    );
    const almost = await signClaims(es256, claims({ iat: NOW_S - 600, exp: NOW_S - 29 }));
    await expect(verifyEntitlementDocument(almost, options())).resolves.toBeDefined();
    await expect(verifyEntitlementDocument(almost, options({ allowExpired: false }))).resolves.toBeDefined();
  });

  it('still checks everything else of an expired document shown as stale', async () => {
    const stale = options({ allowExpired: true });
    const old = { iat: NOW_S - 7200, exp: NOW_S - 3600 };
    await expect(refusal(await signClaims(es256, claims({ ...old, sub: 'user-grace' })), stale)).resolves.toMatchObject(
      {
        code: 'SUBJECT',
      },
    );
    await expect(refusal(await signClaims(es256, claims({ ...old, iat: NOW_S + 60 })), stale)).resolves.toMatchObject({
      code: 'ISSUED_IN_FUTURE',
    });
  });

  it('lists the first five problems of a document with the wrong shape, separated by "; "', async () => {
    const error = await refusal(
      await signClaims(es256, claims({ sub: 1, ver: -1, cnf: {}, device: {}, models: 'none' })),
    );
    expect(error.code).toBe('CLAIMS');
    const prefix = 'The entitlement document does not have the expected shape: ';
    expect(error.message.startsWith(prefix)).toBe(true);
    expect(error.message.endsWith('.')).toBe(true);
    const issues = error.message.slice(prefix.length, -1).split('; ');
    expect(issues.map((issue) => issue.slice(0, issue.indexOf(':')))).toEqual([
      'sub',
      'ver',
      'cnf.jkt',
      'device.id',
      'device.assurance',
    ]);
  });

  it('refuses a replayed version only below the highest seen', async () => {
    const jws = await signClaims(es256, claims({ ver: 0 }));
    await expectRefused(
      jws,
      'VERSION_REPLAYED',
      'The entitlement document has version 0, older than version 1 already seen; an old document was replayed.',
      options({ highestSeenVer: 1 }),
    );
    await expect(verifyEntitlementDocument(jws, options({ highestSeenVer: 0 }))).resolves.toBeDefined();
    await expect(verifyEntitlementDocument(jws, options())).resolves.toBeDefined();
  });
});
