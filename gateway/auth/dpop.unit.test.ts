import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { AuthError } from './errors';
import { DpopVerifier, InMemoryDpopReplayCache, type DpopReplayCache, type ReplayVerdict } from './dpop';

/**
 * What the mutation run of `dpop.ts` showed no other test proves: the replay cache keeps an id
 * until exactly its expiry across rotations, the rotation period the verifier gives it, and the
 * key-type and target checks that only a crafted proof reaches. Proofs are signed by hand
 * (node:crypto); every refusal names its OAuth error and detail and shows nothing was remembered.
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

const ecKey = (): NodeKey => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as JWK, alg: 'ES256' };
};

const edKey = (): NodeKey => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as JWK, alg: 'EdDSA' };
};

let counter = 0;
const freshJti = () => `unit-jti-${String(++counter).padStart(10, '0')}`;

function proof(key: NodeKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const body = { jti: freshJti(), htm: 'GET', htu: URL_, iat: NOW, ...claims };
  const input = `${b64({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...header })}.${b64(body)}`;
  const signature =
    key.alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign(null, Buffer.from(input), key.privateKey);
  return `${input}.${signature.toString('base64url')}`;
}

/** A replay cache that records what the verifier asks it. */
class RecordingReplay implements DpopReplayCache {
  readonly calls: unknown[][] = [];
  async remember(jkt: string, jti: string, expiresAt: number, now: number): Promise<ReplayVerdict> {
    this.calls.push([jkt, jti, expiresAt, now]);
    return 'fresh';
  }
}

async function expectRefused(promise: Promise<unknown>, detail: string, error = 'invalid_dpop_proof') {
  const refusal = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(refusal).toBeInstanceOf(AuthError);
  expect((refusal as AuthError).error).toBe(error);
  expect((refusal as AuthError).detail).toBe(detail);
  expect((refusal as AuthError).status).toBe(401);
}

describe('InMemoryDpopReplayCache keeps an id until exactly its expiry', () => {
  it('when the only rotation comes a whole window after the rotation time (idle)', () => {
    const cache = new InMemoryDpopReplayCache(100, 10, 70);
    // Expiry 1140 = the rotation time (1070) + the window: the latest this generation may hold.
    expect(cache.rememberNow('k', 'a', 1140, 1000)).toBe('fresh');
    expect(cache.rememberNow('k', 'a', 1140, 1140)).toBe('replay');
    // The second after, it is forgotten.
    expect(cache.rememberNow('k', 'a', 1140, 1141)).toBe('fresh');
  });

  it('when a proof arrives exactly at the rotation time and the next rotation is a window later', () => {
    const cache = new InMemoryDpopReplayCache(100, 10, 70);
    expect(cache.rememberNow('k', 'a', 1140, 1000)).toBe('fresh');
    expect(cache.rememberNow('k', 'b', 1200, 1070)).toBe('fresh');
    expect(cache.rememberNow('k', 'a', 1140, 1140)).toBe('replay');
    expect(cache.rememberNow('k', 'b', 1200, 1200)).toBe('replay');
  });

  it('when its rotation was postponed to its expiry minus the window', () => {
    const cache = new InMemoryDpopReplayCache(100, 10, 70);
    expect(cache.rememberNow('k', 'far', 1300, 1000)).toBe('fresh');
    // Postponed to 1230; at 1230 and at 1300 (a window later) it is still held.
    expect(cache.rememberNow('k', 'far', 1300, 1230)).toBe('replay');
    expect(cache.rememberNow('k', 'far', 1300, 1300)).toBe('replay');
    expect(cache.rememberNow('k', 'far', 1300, 1301)).toBe('fresh');
  });

  it('postpones the rotation to no later than needed: the long-lived id alone is dropped at its expiry', () => {
    const cache = new InMemoryDpopReplayCache(2, 10, 70);
    expect(cache.rememberNow('k', 'far', 1300, 1000)).toBe('fresh');
    // Rotated (postponed to 1230) before 'y', so 'far' and 'y' are in different generations.
    expect(cache.rememberNow('k', 'y', 1400, 1240)).toBe('fresh');
    expect(cache.rememberNow('k', 'z', 1400, 1300)).toBe('full');
    expect(cache.rememberNow('k', 'z', 1400, 1301)).toBe('fresh');
    expect(cache.size()).toBe(2);
    expect(cache.rememberNow('k', 'y', 1400, 1302)).toBe('replay');
  });
});

describe('DpopVerifier replay cache', () => {
  /** Verifies one fresh proof made at `at` seconds after NOW, and answers how many ids the cache then holds. */
  async function sizesAfterProofsAt(
    options: { maxAgeSeconds?: number; clockToleranceSeconds?: number },
    times: number[],
  ) {
    let now = NOW;
    const dpop = new DpopVerifier({ clock: () => now, ...options });
    const cache = dpop.replay as InMemoryDpopReplayCache;
    const key = ecKey();
    const sizes: number[] = [];
    for (const at of times) {
      now = NOW + at;
      await dpop.verify(proof(key, { iat: now }), expected);
      sizes.push(cache.size());
    }
    return sizes;
  }

  it('rotates its own replay cache every max age + 2 × tolerance (70 s by default)', async () => {
    // Everything seen in the first 70 s is one generation, kept until its newest id (65 s + 65 s) expires;
    // the rotation after 70 s (at 126 s) moves it whole, and it is dropped just after 130 s.
    expect(await sizesAfterProofsAt({}, [0, 60, 65, 126, 131])).toEqual([1, 2, 3, 4, 2]);
  });

  it('rotates at max age + 2 × tolerance for other settings too (36 s)', async () => {
    expect(await sizesAfterProofsAt({ maxAgeSeconds: 30, clockToleranceSeconds: 3 }, [0, 30, 33, 64, 67])).toEqual([
      1, 2, 3, 4, 2,
    ]);
  });
});

describe('DPoP proof checks a crafted proof reaches', () => {
  it('refuses an htu that is not a URI even when a configured origin is not one either', async () => {
    const replay = new RecordingReplay();
    const dpop = new DpopVerifier({ clock: () => NOW, replay });
    await expectRefused(
      dpop.verify(proof(ecKey(), { htu: 'not a url' }), { method: 'GET', urls: ['also not a url', URL_] }),
      'DPoP proof htu does not match this request URI',
    );
    expect(replay.calls).toEqual([]);
  });

  it('refuses a target URI of another scheme than http(s), even one a configured origin names', async () => {
    const replay = new RecordingReplay();
    const dpop = new DpopVerifier({ clock: () => NOW, replay });
    const ftp = 'ftp://gw.example/v1/entitlements';
    await expectRefused(
      dpop.verify(proof(ecKey(), { htu: ftp }), { method: 'GET', urls: [ftp, URL_] }),
      'DPoP proof htu does not match this request URI',
    );
    expect(replay.calls).toEqual([]);
  });

  it('refuses an ES256 proof whose jwk has the P-256 members but another kty', async () => {
    const replay = new RecordingReplay();
    const key = ecKey();
    await expectRefused(
      new DpopVerifier({ clock: () => NOW, replay }).verify(
        proof(key, {}, { jwk: { ...key.jwk, kty: 'OKP' } }),
        expected,
      ),
      'DPoP proof jwk is not a key for ES256 (kty/crv)',
    );
    expect(replay.calls).toEqual([]);
  });

  it('refuses an EdDSA proof whose jwk has the Ed25519 members but another kty', async () => {
    const replay = new RecordingReplay();
    const key = edKey();
    await expectRefused(
      new DpopVerifier({ clock: () => NOW, replay }).verify(
        proof(key, {}, { jwk: { ...key.jwk, kty: 'EC' } }),
        expected,
      ),
      'DPoP proof jwk is not a key for EdDSA (kty/crv)',
    );
    expect(replay.calls).toEqual([]);
  });
});
