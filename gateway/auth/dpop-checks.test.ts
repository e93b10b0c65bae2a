import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { AuthError } from './errors';
import { DpopVerifier, InMemoryDpopReplayCache, type DpopReplayCache, type ReplayVerdict } from './dpop';

/**
 * The RFC 9449 §4.3 checks and the replay cache, each with the proof that only it refuses: proofs are
 * signed by hand (node:crypto) so the payload, header and signature can be anything an attacker sends.
 */

const NOW = 1_800_000_000;
const URL_ = 'https://gw.example/v1/entitlements';
const expected = { method: 'GET', urls: [URL_] };
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

interface NodeKey {
  readonly privateKey: KeyObject;
  readonly jwk: JWK;
  readonly alg: 'ES256' | 'EdDSA';
}

function ecKey(): NodeKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as JWK, alg: 'ES256' };
}

function edKey(): NodeKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as JWK, alg: 'EdDSA' };
}

let counter = 0;
const jti = () => `checks-jti-${String(++counter).padStart(8, '0')}`;
const claims = (extra: Record<string, unknown> = {}) => ({ jti: jti(), htm: 'GET', htu: URL_, iat: NOW, ...extra });

function signWith(key: NodeKey, input: string): string {
  const signature =
    key.alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign(null, Buffer.from(input), key.privateKey);
  return signature.toString('base64url');
}

/** A proof whose encoded payload is exactly `payload` (any text, not only a JSON object). */
function rawProof(key: NodeKey, payload: string, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...header })}.${Buffer.from(payload).toString('base64url')}`;
  return `${input}.${signWith(key, input)}`;
}

const proof = (key: NodeKey, extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
  rawProof(key, JSON.stringify(claims(extra)), header);

const verifier = (options: ConstructorParameters<typeof DpopVerifier>[0] = {}) =>
  new DpopVerifier({ clock: () => NOW, ...options });

async function expectRefused(promise: Promise<unknown>, detail: string | RegExp, error = 'invalid_dpop_proof') {
  const refusal = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(refusal).toBeInstanceOf(AuthError);
  expect((refusal as AuthError).error).toBe(error);
  if (typeof detail === 'string') expect((refusal as AuthError).detail).toBe(detail);
  else expect((refusal as AuthError).detail).toMatch(detail);
  expect((refusal as AuthError).status).toBe(401);
}

/** A replay cache that records what the verifier asks it, answering `fresh`. */
class RecordingReplay implements DpopReplayCache {
  readonly calls: [string, string, number, number][] = [];
  constructor(private readonly verdict: ReplayVerdict = 'fresh') {}
  async remember(jkt: string, id: string, expiresAt: number, now: number): Promise<ReplayVerdict> {
    this.calls.push([jkt, id, expiresAt, now]);
    return this.verdict;
  }
}

describe('DPoP proof checks (hand-signed proofs)', () => {
  it('refuses a proof with a b64 header parameter, and remembers nothing', async () => {
    const replay = new RecordingReplay();
    await expectRefused(
      verifier({ replay }).verify(proof(ecKey(), {}, { b64: false }), expected),
      'DPoP proof uses unsupported header parameters (crit/b64)',
    );
    expect(replay.calls).toEqual([]);
  });

  it('refuses a proof of two, four or five segments (the JWE form jose decodes), or with an empty signature, as not a JWT', async () => {
    for (const key of [ecKey(), edKey()]) {
      const whole = proof(key);
      const [header, payload, signature] = whole.split('.');
      for (const bad of [
        `${header}.${payload}`,
        `${header}.${payload}.`,
        `${header}.${payload}.${signature}.x`,
        `${header}.${payload}.${signature}.x.y`,
      ]) {
        await expectRefused(verifier().verify(bad, expected), 'DPoP proof is not a JWT');
      }
      await expect(verifier().verify(whole, expected)).resolves.toBeDefined();
    }
  });

  it('refuses an ES256 signature of the wrong length as not verifying (never another error)', async () => {
    const key = ecKey();
    const [header, payload, signature] = proof(key).split('.');
    const bytes = Buffer.from(signature!, 'base64url');
    for (const bad of [bytes.subarray(0, 63), Buffer.concat([bytes, Buffer.alloc(1)])]) {
      await expectRefused(
        verifier().verify(`${header}.${payload}.${bad.toString('base64url')}`, expected),
        'DPoP proof rejected: signature does not verify',
      );
    }
  });

  it('refuses an EdDSA proof signed by another key', async () => {
    const key = edKey();
    const other = edKey();
    const input = `${b64({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: key.jwk })}.${b64(claims())}`;
    await expectRefused(
      verifier().verify(`${input}.${signWith(other, input)}`, expected),
      'DPoP proof rejected: signature does not verify',
    );
  });

  it.each(['null', '42', '"text"', '[1,2]', 'not json', 'true'])(
    'refuses a signed payload that is not a JSON object (%s)',
    async (payload) => {
      await expectRefused(
        verifier().verify(rawProof(ecKey(), payload), expected),
        'DPoP proof rejected: the payload is not a JSON object',
      );
    },
  );

  it.each(['exp', 'nbf'])('refuses a non-numeric "%s" with its claim named', async (claim) => {
    await expectRefused(
      verifier().verify(proof(ecKey(), { [claim]: String(NOW + 100) }), expected),
      `DPoP proof rejected: "${claim}" claim must be a number (claim "${claim}")`,
    );
  });

  it('refuses a proof whose exp is at or before now minus the tolerance, and accepts one just after', async () => {
    const key = ecKey();
    await expectRefused(
      verifier().verify(proof(key, { exp: NOW - 5 }), expected),
      'DPoP proof rejected: token expired ("exp")',
    );
    await expect(verifier().verify(proof(key, { exp: NOW - 4 }), expected)).resolves.toBeDefined();
    await expectRefused(
      verifier({ clockToleranceSeconds: 0 }).verify(proof(key, { exp: NOW }), expected),
      'DPoP proof rejected: token expired ("exp")',
    );
  });

  it('refuses a proof whose nbf is beyond now plus the tolerance, and accepts one at it', async () => {
    const key = ecKey();
    await expectRefused(
      verifier().verify(proof(key, { nbf: NOW + 6 }), expected),
      'DPoP proof rejected: not yet valid ("nbf")',
    );
    await expect(verifier().verify(proof(key, { nbf: NOW + 5 }), expected)).resolves.toBeDefined();
    await expectRefused(
      verifier({ clockToleranceSeconds: 0 }).verify(proof(key, { nbf: NOW + 1 }), expected),
      'DPoP proof rejected: not yet valid ("nbf")',
    );
  });

  it('refuses an iat that is not a finite number (1e999 parses as Infinity)', async () => {
    for (const iat of ['1e999', '-1e999']) {
      const payload = JSON.stringify(claims({ iat: 0 })).replace('"iat":0', `"iat":${iat}`);
      await expectRefused(verifier().verify(rawProof(ecKey(), payload), expected), 'DPoP proof has no iat');
    }
  });

  it('refuses a key whose type or curve does not fit ES256, or that is not EdDSA Ed25519', async () => {
    const ec = ecKey();
    const ed = edKey();
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const p384Key: NodeKey = {
      privateKey: p384.privateKey,
      jwk: p384.publicKey.export({ format: 'jwk' }) as JWK,
      alg: 'ES256',
    };
    await expectRefused(verifier().verify(proof(p384Key), expected), 'DPoP proof jwk is not a key for ES256 (kty/crv)');
    await expectRefused(
      verifier().verify(proof(ec, {}, { jwk: ed.jwk }), expected),
      'DPoP proof jwk is not a key for ES256 (kty/crv)',
    );
    await expectRefused(
      verifier().verify(proof(ed, {}, { jwk: { ...ed.jwk, crv: 'Ed448' } }), expected),
      'DPoP proof jwk is not a key for EdDSA (kty/crv)',
    );
    await expectRefused(
      verifier().verify(proof(ed, {}, { jwk: ec.jwk }), expected),
      'DPoP proof jwk is not a key for EdDSA (kty/crv)',
    );
  });

  it('refuses a jwk whose members are not strings, and one that is not a point of the curve', async () => {
    const key = ecKey();
    await expectRefused(
      verifier().verify(proof(key, {}, { jwk: { ...key.jwk, x: 1 } }), expected),
      'DPoP proof jwk is malformed',
    );
    await expectRefused(
      verifier().verify(proof(key, {}, { jwk: { ...key.jwk, y: undefined } }), expected),
      'DPoP proof jwk is malformed',
    );
    const ed = edKey();
    await expectRefused(
      verifier().verify(proof(ed, {}, { jwk: { ...ed.jwk, x: 7 } }), expected),
      'DPoP proof jwk is malformed',
    );
    await expectRefused(
      verifier().verify(proof(key, {}, { jwk: { ...key.jwk, y: key.jwk.x } }), expected),
      /^DPoP proof jwk is not a valid public key \(.+\)$/,
    );
  });

  it('takes only the RFC 7638 members for the thumbprint, ignoring others', async () => {
    const key = ecKey();
    const expectedJkt = createHash('sha256')
      .update(JSON.stringify({ crv: 'P-256', kty: 'EC', x: key.jwk.x, y: key.jwk.y }))
      .digest('base64url');
    const result = await verifier().verify(proof(key, {}, { jwk: { ...key.jwk, kid: 'mine', use: 'sig' } }), expected);
    expect(result.jkt).toBe(expectedJkt);
    const ed = edKey();
    const edJkt = createHash('sha256')
      .update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x: ed.jwk.x }))
      .digest('base64url');
    expect((await verifier().verify(proof(ed), expected)).jkt).toBe(edJkt);
  });

  it('keeps at most keyCacheSize device keys imported, and the evicted key still verifies', async () => {
    const dpop = verifier({ keyCacheSize: 2 });
    const keys = [ecKey(), edKey(), ecKey()];
    for (const key of keys) await dpop.verify(proof(key), expected);
    expect(dpop.keyCacheEntries).toBe(2);
    for (const key of keys) await expect(dpop.verify(proof(key), expected)).resolves.toBeDefined();
    expect(dpop.keyCacheEntries).toBe(2);
    // A key already held is answered from the cache and evicts none.
    await dpop.verify(proof(keys[2]!), expected);
    expect(dpop.keyCacheEntries).toBe(2);
  });

  it('refuses a cached key when the proof names it for the other algorithm', async () => {
    const dpop = verifier();
    const key = ecKey();
    await dpop.verify(proof(key), expected);
    const input = `${b64({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: key.jwk })}.${b64(claims())}`;
    await expectRefused(
      dpop.verify(`${input}.${signWith(key, input)}`, expected),
      'DPoP proof jwk is not a key for EdDSA (kty/crv)',
    );
  });

  it('refuses an ath of another length than the token hash, and any ath once the token differs', async () => {
    const key = ecKey();
    for (const ath of ['abc', 'A'.repeat(44), '']) {
      await expectRefused(
        verifier().verify(proof(key, { ath }), { ...expected, accessToken: 'token-value' }),
        'DPoP proof ath does not match the access token',
      );
    }
  });

  it('refuses a bound key thumbprint of another length', async () => {
    const key = ecKey();
    await expectRefused(
      verifier().verify(proof(key), { ...expected, boundJkt: 'short' }),
      'DPoP proof key does not match the key the token is bound to (cnf.jkt)',
      'invalid_token',
    );
  });

  it('refuses a nonce that is not a string with use_dpop_nonce', async () => {
    await expectRefused(
      verifier({ requireNonce: true }).verify(proof(ecKey(), { nonce: 42 }), expected),
      'Authorization server requires nonce in DPoP proof',
      'use_dpop_nonce',
    );
  });

  it('changes the nonce every 120 s by default', () => {
    let now = 120 * 15_000_000;
    const dpop = new DpopVerifier({ clock: () => now });
    const first = dpop.currentNonce();
    now += 119;
    expect(dpop.currentNonce()).toBe(first);
    now += 1;
    expect(dpop.currentNonce()).not.toBe(first);
  });

  it('accepts a nonce minted by another verifier with the same secret, not with another', async () => {
    const secret = Buffer.alloc(32, 7);
    const key = ecKey();
    const nonce = verifier({ nonceSecret: secret }).currentNonce();
    await expect(
      verifier({ nonceSecret: secret, requireNonce: true }).verify(proof(key, { nonce }), expected),
    ).resolves.toBeDefined();
    await expectRefused(
      verifier({ nonceSecret: Buffer.alloc(32, 8), requireNonce: true }).verify(proof(key, { nonce }), expected),
      'Authorization server requires nonce in DPoP proof',
      'use_dpop_nonce',
    );
  });

  it('asks the replay cache to remember the proof id until iat + max age + tolerance, per key and subject', async () => {
    const key = ecKey();
    const replay = new RecordingReplay();
    const dpop = verifier({ replay, maxAgeSeconds: 30, clockToleranceSeconds: 3 });
    const plain = await dpop.verify(proof(key, { jti: 'p'.repeat(16), iat: NOW - 2 }), expected);
    await dpop.verify(proof(key, { jti: 'q'.repeat(16) }), { ...expected, replayScope: 'alice' });
    expect(replay.calls).toEqual([
      [plain.jkt, 'p'.repeat(16), NOW - 2 + 30 + 3, NOW],
      [`alice\u0000${plain.jkt}`, 'q'.repeat(16), NOW + 33, NOW],
    ]);
  });

  it('keeps subjects sharing a device key apart in the replay cache, and still catches a replay', async () => {
    const key = ecKey();
    const dpop = verifier({ replayEntriesPerKey: 1 });
    const shared = proof(key, { jti: 's'.repeat(16) });
    await dpop.verify(shared, { ...expected, replayScope: 'alice' });
    await expect(dpop.verify(shared, { ...expected, replayScope: 'bob' })).resolves.toBeDefined();
    await expectRefused(
      dpop.verify(shared, { ...expected, replayScope: 'alice' }),
      'DPoP proof was already used (jti replay)',
    );
  });

  it('maps the replay verdicts to a 429 with the right scope and Retry-After', async () => {
    const key = ecKey();
    await expect(
      verifier({ replay: new RecordingReplay('key-full'), maxAgeSeconds: 42 }).verify(proof(key), expected),
    ).rejects.toMatchObject({
      name: 'QuotaExceeded',
      scope: 'device',
      detail: 'Too many requests from this device key; retry shortly.',
      retryAfterSeconds: 42,
    });
    await expect(verifier({ replay: new RecordingReplay('full') }).verify(proof(key), expected)).rejects.toMatchObject({
      name: 'QuotaExceeded',
      scope: 'global',
      retryAfterSeconds: 5,
    });
  });

  it('uses the real clock by default', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect(new DpopVerifier().verify(proof(ecKey(), { iat: now }), expected)).resolves.toMatchObject({
      iat: now,
    });
  });

  it('checks every URI it is given, even a long one it does not keep', async () => {
    const key = ecKey();
    const long = `${URL_}/${'a'.repeat(2100)}`;
    const dpop = verifier({ replay: new RecordingReplay() });
    for (let i = 0; i < 2; i++) {
      await expect(dpop.verify(proof(key, { htu: long }), { method: 'GET', urls: [long] })).resolves.toBeDefined();
      await expectRefused(
        dpop.verify(proof(key, { htu: long }), expected),
        'DPoP proof htu does not match this request URI',
      );
    }
  });
});

describe('InMemoryDpopReplayCache', () => {
  it('remembers a proof id until its expiry, through one rotation, and counts what it holds', () => {
    const cache = new InMemoryDpopReplayCache(100, 10, 70);
    expect(cache.rememberNow('k', 'a', 1065, 1000)).toBe('fresh');
    expect(cache.size()).toBe(1);
    expect(cache.rememberNow('k', 'a', 1065, 1000)).toBe('replay');
    // Rotation at 1070 keeps the id in the previous generation.
    expect(cache.rememberNow('k', 'b', 1060 + 65, 1060)).toBe('fresh');
    expect(cache.rememberNow('k', 'a', 1065, 1065)).toBe('replay');
    expect(cache.size()).toBe(2);
  });

  it('keeps an id until exactly its expiry and forgets the generation after it', () => {
    const cache = new InMemoryDpopReplayCache(1, 10, 70);
    expect(cache.rememberNow('k', 'a', 1010, 1000)).toBe('fresh');
    expect(cache.rememberNow('k', 'b', 1010, 1010)).toBe('full');
    expect(cache.rememberNow('k', 'a', 1010, 1010)).toBe('replay');
    // Past every expiry in it, the current generation is dropped: room again, before any rotation.
    expect(cache.rememberNow('k', 'b', 1030, 1011)).toBe('fresh');
    expect(cache.size()).toBe(1);
  });

  it('drops the previous generation once everything in it expired', () => {
    const cache = new InMemoryDpopReplayCache(1, 10, 70);
    expect(cache.rememberNow('k', 'a', 1050, 1000)).toBe('fresh');
    // Rotation just after 1070: 'a' moves to the previous generation, which expired at 1050.
    expect(cache.rememberNow('k', 'b', 1080, 1071)).toBe('fresh');
    expect(cache.size()).toBe(1);
    const cache2 = new InMemoryDpopReplayCache(2, 10, 70);
    expect(cache2.rememberNow('k', 'a', 1075, 1000)).toBe('fresh');
    expect(cache2.rememberNow('k', 'b', 1140, 1071)).toBe('fresh');
    expect(cache2.rememberNow('k', 'a', 1075, 1075)).toBe('replay');
    expect(cache2.size()).toBe(2);
    expect(cache2.rememberNow('k', 'c', 1140, 1076)).toBe('fresh');
    expect(cache2.size()).toBe(2);
  });

  it('keeps the current generation while an id in it has not expired, whatever the order they came in', () => {
    const cache = new InMemoryDpopReplayCache(10, 10, 70);
    expect(cache.rememberNow('k', 'long', 1060, 1000)).toBe('fresh');
    expect(cache.rememberNow('k', 'short', 1010, 1001)).toBe('fresh');
    expect(cache.rememberNow('k', 'long', 1060, 1020)).toBe('replay');
  });

  it('keeps the previous generation while an id in it has not expired', () => {
    const cache = new InMemoryDpopReplayCache(10, 10, 70);
    expect(cache.rememberNow('k', 'long', 1130, 1000)).toBe('fresh');
    expect(cache.rememberNow('k', 'short', 1010, 1001)).toBe('fresh');
    // 1071 rotates; 'long' (to 1130) must still be caught as a replay at 1100.
    expect(cache.rememberNow('k', 'x', 1120, 1071)).toBe('fresh');
    expect(cache.rememberNow('k', 'long', 1130, 1100)).toBe('replay');
  });

  it('postpones the rotation for an id that would outlast both generations', () => {
    const cache = new InMemoryDpopReplayCache(100, 10, 70);
    expect(cache.rememberNow('k', 'far', 1300, 1000)).toBe('fresh');
    for (const now of [1070, 1140, 1210, 1280, 1300]) {
      expect(cache.rememberNow('k', 'far', 1300, now)).toBe('replay');
    }
  });

  it('forgets everything after being idle for more than a window past the rotation', () => {
    const cache = new InMemoryDpopReplayCache(100, 1, 70);
    expect(cache.rememberNow('k', 'a', 1065, 1000)).toBe('fresh');
    expect(cache.rememberNow('k', 'b', 1065, 1000)).toBe('key-full');
    // A generation rotated (1070) keeps the id a while; idle beyond 1140, nothing is kept.
    expect(cache.rememberNow('k', 'b', 1300, 1140)).toBe('fresh');
    expect(cache.size()).toBe(1);
  });

  it('rotates at the window, counting ids of both generations toward each bound', () => {
    // Expiries within a window of the rotation time (no postponement): 'a' is in the previous generation
    // after the rotation just past 1070, 'b' in the current one.
    const perKey = new InMemoryDpopReplayCache(100, 2, 70);
    expect(perKey.rememberNow('k', 'a', 1140, 1000)).toBe('fresh');
    expect(perKey.rememberNow('k', 'b', 1140, 1071)).toBe('fresh');
    expect(perKey.rememberNow('k', 'c', 1140, 1072)).toBe('key-full');
    expect(perKey.rememberNow('other', 'c', 1140, 1072)).toBe('fresh');
    const global = new InMemoryDpopReplayCache(2, 10, 70);
    expect(global.rememberNow('k1', 'a', 1140, 1000)).toBe('fresh');
    expect(global.rememberNow('k2', 'b', 1140, 1071)).toBe('fresh');
    expect(global.rememberNow('k3', 'c', 1140, 1072)).toBe('full');
    expect(global.size()).toBe(2);
  });

  it('answers remember like rememberNow', async () => {
    const cache = new InMemoryDpopReplayCache();
    expect(await cache.remember('k', 'a', 1065, 1000)).toBe('fresh');
    expect(await cache.remember('k', 'a', 1065, 1000)).toBe('replay');
    expect(cache.size()).toBe(1);
  });

  it('holds 1000 ids per key by default', () => {
    const cache = new InMemoryDpopReplayCache();
    for (let i = 0; i < 1000; i++) expect(cache.rememberNow('k', `id-${i}`, 1065, 1000)).toBe('fresh');
    expect(cache.rememberNow('k', 'one-more', 1065, 1000)).toBe('key-full');
  });
});
