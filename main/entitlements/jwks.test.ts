import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../node/adapters';
import { EntitlementCache } from './cache';
import { EntitlementError } from './errors';
import { EntitlementKeySet, jwksUrlFor } from './jwks';
import { documentClaims, makeSigner, signClaims, TestGateway, TEST_ISSUER } from './test-gateway';
import { verifyEntitlementDocument } from './verify';

const clock = { now: () => Date.now() };
let gateway: TestGateway;

beforeEach(async () => {
  gateway = await TestGateway.start();
});
afterEach(async () => {
  await gateway.stop();
});

function keySet(extra: Partial<ConstructorParameters<typeof EntitlementKeySet>[0]> = {}) {
  return new EntitlementKeySet({ jwksUrl: jwksUrlFor(gateway.url), http: fetch, clock, ...extra });
}

describe('jwksUrlFor', () => {
  it('keeps a path prefix of the gateway URL', () => {
    expect(jwksUrlFor('https://gw.lab.example')).toBe('https://gw.lab.example/.well-known/jwks.json');
    expect(jwksUrlFor('https://lab.example/gw/')).toBe('https://lab.example/gw/.well-known/jwks.json');
  });
});

describe('EntitlementKeySet', () => {
  it('finds a key by kid in the gateway JWKS', async () => {
    const session = await makeSigner('ES256', 'session-key');
    const entitlements = await makeSigner('ES256', 'entitlements-key');
    gateway.jwks = { keys: [session.publicJwk, entitlements.publicJwk] };
    const key = await keySet().resolver({ network: true })('entitlements-key', 'ES256');
    expect(key.x).toBe(entitlements.publicJwk.x);
  });

  it('never fetches a key from a URL named in the token', async () => {
    const trusted = await makeSigner('ES256', 'trusted');
    const attacker = await makeSigner('ES256', 'attacker');
    gateway.jwks = { keys: [trusted.publicJwk] };
    const jws = await signClaims(
      attacker,
      documentClaims({ sub: 's', jkt: 'j', ver: 1, nowSeconds: Date.now() / 1000 }),
      {
        jku: `${gateway.url}/attacker-jwks.json`,
        x5u: `${gateway.url}/attacker-cert.pem`,
        jwk: attacker.publicJwk,
      },
    );
    const error = await verifyEntitlementDocument(jws, {
      resolveKey: keySet().resolver({ network: true }),
      issuer: TEST_ISSUER,
      expectedSub: 's',
      expectedJkt: 'j',
      now: Date.now(),
    }).catch((thrown: unknown) => thrown);
    expect((error as EntitlementError).code).toBe('KEY_UNKNOWN');
    expect(gateway.requests.map((request) => request.path)).toEqual(['/.well-known/jwks.json']);
  });

  it('refetches once for an unknown kid (rotation) but not again within the interval', async () => {
    const first = await makeSigner('ES256', 'k1');
    const rotated = await makeSigner('ES256', 'k2');
    gateway.jwks = { keys: [first.publicJwk] };
    const keys = keySet({ minRefetchIntervalMs: 60_000 });
    const resolve = keys.resolver({ network: true });
    await resolve('k1', 'ES256');
    gateway.jwks = { keys: [first.publicJwk, rotated.publicJwk] };
    await expect(resolve('k2', 'ES256')).rejects.toMatchObject({ code: 'KEY_UNKNOWN' });
    expect(gateway.seen('/.well-known/jwks.json')).toHaveLength(1);

    const eager = keySet({ minRefetchIntervalMs: 0 });
    gateway.jwks = { keys: [first.publicJwk] };
    await eager.resolver({ network: true })('k1', 'ES256');
    gateway.jwks = { keys: [first.publicJwk, rotated.publicJwk] };
    await expect(eager.resolver({ network: true })('k2', 'ES256')).resolves.toMatchObject({ kid: 'k2' });
  });

  it('uses only pinned keys when managed settings pin them, and never fetches', async () => {
    const pinned = await makeSigner('ES256', 'pinned');
    const published = await makeSigner('ES256', 'published');
    gateway.jwks = { keys: [published.publicJwk] };
    const keys = keySet({ pinnedKeys: [pinned.publicJwk] });
    await expect(keys.resolver({ network: true })('pinned', 'ES256')).resolves.toMatchObject({ kid: 'pinned' });
    const error = await keys
      .resolver({ network: true })('published', 'ES256')
      .catch((thrown: unknown) => thrown);
    expect((error as EntitlementError).message).toMatch(/pinned by your organisation/);
    expect(gateway.requests).toHaveLength(0);
  });

  it('drops keys that carry a private part', async () => {
    const signer = await makeSigner('ES256', 'leaky');
    gateway.jwks = { keys: [{ ...signer.publicJwk, d: 'secret' }] };
    await expect(keySet().resolver({ network: true })('leaky', 'ES256')).rejects.toMatchObject({
      code: 'KEYS_UNAVAILABLE',
    });
  });

  it('keeps the fetched keys encrypted on disk and uses them offline', async () => {
    const signer = await makeSigner('ES256', 'cached');
    gateway.jwks = { keys: [signer.publicJwk] };
    const directory = await mkdtemp(join(tmpdir(), 'clearance-jwks-'));
    const store = new EntitlementCache({ secrets: new MemorySecretStore(Buffer.alloc(32, 7)), directory });
    await keySet({ store }).refresh();
    expect(await readdir(directory)).toEqual(['jwks.bin']);
    await gateway.stop();
    const offline = keySet({
      store: new EntitlementCache({ secrets: new MemorySecretStore(Buffer.alloc(32, 7)), directory }),
    });
    await expect(offline.resolver({ network: false })('cached', 'ES256')).resolves.toMatchObject({ kid: 'cached' });
  });

  it('says the keys are unavailable when the gateway cannot be reached and nothing is cached', async () => {
    await gateway.stop();
    await expect(keySet().resolver({ network: true })('any', 'ES256')).rejects.toMatchObject({
      code: 'KEYS_UNAVAILABLE',
    });
  });
});
