import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { JSONWebKeySet, JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EntitlementError } from './errors';
import { EntitlementKeySet, jwksUrlFor, type EntitlementKeySetOptions } from './jwks';
import { makeSigner, type TestSigner } from './test-gateway';

/**
 * How the key set is fetched, kept and looked up, at each check's boundary (issue 16): the fetch
 * fails closed (error status, redirect, no answer, not a key set), pinned keys are the only keys,
 * an unknown kid refetches only after the interval, and the stored set never overrides fresher keys.
 * The gateway is a loopback HTTP server whose answers each test sets.
 */

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

interface Loopback {
  readonly url: string;
  readonly requests: IncomingMessage[];
  handler: Handler;
}

const servers: { server: Server; sockets: Set<Socket> }[] = [];

async function loopback(handler: Handler): Promise<Loopback> {
  const sockets = new Set<Socket>();
  const state = { requests: [] as IncomingMessage[], handler, url: '' };
  const server = createServer((request, response) => {
    state.requests.push(request);
    state.handler(request, response);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  servers.push({ server, sockets });
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

function serving(body: unknown, status = 200): Handler {
  return (_request, response) => {
    response
      .writeHead(status, { 'content-type': 'application/jwk-set+json' })
      .end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

afterEach(async () => {
  for (const { server, sockets } of servers.splice(0)) {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

let k1: TestSigner;
let k2: TestSigner;
let ed: TestSigner;

beforeAll(async () => {
  k1 = await makeSigner('ES256', 'k1');
  k2 = await makeSigner('ES256', 'k2');
  ed = await makeSigner('EdDSA', 'k1');
});

/** A clock the test moves. */
function manualClock(start = Date.UTC(2026, 10, 26, 12, 0, 0)) {
  return {
    t: start,
    now(): number {
      return this.t;
    },
  };
}

function memoryStore(initial?: JSONWebKeySet, failSave = false) {
  const store = {
    saved: initial,
    loads: 0,
    async loadJwks() {
      store.loads += 1;
      return store.saved;
    },
    async saveJwks(jwks: JSONWebKeySet) {
      if (failSave) throw new Error('disk full');
      store.saved = jwks;
    },
  };
  return store;
}

function keySetFor(gateway: Loopback, extra: Partial<EntitlementKeySetOptions> = {}) {
  const logged: string[] = [];
  const keys = new EntitlementKeySet({
    jwksUrl: jwksUrlFor(gateway.url),
    http: fetch,
    clock: manualClock(),
    log: (message, error) => logged.push(error ? `${message}: ${(error as Error).message}` : message),
    ...extra,
  });
  return { keys, logged };
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(EntitlementError);
  return { code: (error as EntitlementError).code, message: (error as EntitlementError).message };
}

const UNAVAILABLE = {
  code: 'KEYS_UNAVAILABLE',
  message: "The gateway's signing keys are not available yet, so the entitlement document cannot be checked.",
};
const notPublished = (kid: string) => ({
  code: 'KEY_UNKNOWN',
  message: `The entitlement document is signed with key "${kid}", which the gateway does not publish.`,
});

describe('jwksUrlFor', () => {
  it('keeps a path prefix given without a trailing slash', () => {
    expect(jwksUrlFor('https://lab.example/gw')).toBe('https://lab.example/gw/.well-known/jwks.json');
  });
});

describe('EntitlementKeySet: fetching fails closed', () => {
  it('asks for a JWK set without credentials', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }));
    await keySetFor(gateway).keys.refresh();
    expect(gateway.requests).toHaveLength(1);
    expect(gateway.requests[0]?.url).toBe('/.well-known/jwks.json');
    expect(gateway.requests[0]?.headers.accept).toBe('application/jwk-set+json, application/json');
    expect(gateway.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('refuses a key set served with an error status', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }, 500));
    const { keys, logged } = keySetFor(gateway);
    expect(await refusal(keys.resolver({ network: true })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    expect(logged).toEqual([
      `Could not fetch the gateway's signing keys from ${gateway.url}/.well-known/jwks.json: HTTP 500`,
    ]);
  });

  it('never follows a redirect to another key set', async () => {
    const attacker = await loopback(serving({ keys: [k1.publicJwk] }));
    const gateway = await loopback((_request, response) => {
      response.writeHead(302, { location: `${attacker.url}/.well-known/jwks.json` }).end();
    });
    const { keys, logged } = keySetFor(gateway);
    expect(await refusal(keys.resolver({ network: true })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    expect(attacker.requests).toHaveLength(0);
    expect(logged).toHaveLength(1);
  });

  it('gives up on a gateway that does not answer within fetchTimeoutMs', { timeout: 4000 }, async () => {
    const gateway = await loopback(() => {
      // never answers
    });
    const { keys } = keySetFor(gateway, { fetchTimeoutMs: 200 });
    const started = Date.now();
    expect(await refusal(keys.resolver({ network: true })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('fails closed without a log function too', async () => {
    const gateway = await loopback(serving('<html>Bad gateway</html>', 502));
    const keys = new EntitlementKeySet({ jwksUrl: jwksUrlFor(gateway.url), http: fetch, clock: manualClock() });
    expect(await refusal(keys.resolver({ network: true })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    gateway.handler = serving({ keys: 'none' });
    await keys.refresh();
    expect(await refusal(keys.resolver({ network: false })('k1', 'ES256'))).toEqual(UNAVAILABLE);
  });

  it('keeps the previous keys when the gateway answers something that is not a key set', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }));
    const { keys, logged } = keySetFor(gateway);
    await keys.refresh();
    const url = `${gateway.url}/.well-known/jwks.json`;
    for (const body of [{ nope: 1 }, [], { keys: [{ kid: 'k2' }] }, { keys: [{ ...k2.publicJwk, kid: 7 }] }]) {
      gateway.handler = serving(body);
      await keys.refresh();
      await expect(keys.resolver({ network: false })('k1', 'ES256')).resolves.toEqual(k1.publicJwk);
      expect(logged.pop()).toBe(`The gateway's key set at ${url} is not a JWKS; keeping the previous keys`);
    }
    gateway.handler = serving('<html>Bad gateway</html>');
    await keys.refresh();
    await expect(keys.resolver({ network: false })('k1', 'ES256')).resolves.toEqual(k1.publicJwk);
    expect(logged.pop()).toMatch(new RegExp(`^Could not fetch the gateway's signing keys from ${url}: `));
    expect(logged).toEqual([]);
  });

  it('never hands out a key without a kty', async () => {
    const gateway = await loopback(serving({ keys: [{ kid: 'k1', x: k1.publicJwk.x, y: k1.publicJwk.y }] }));
    const { keys } = keySetFor(gateway);
    expect(await refusal(keys.resolver({ network: true })('k1', 'ES256'))).toEqual(UNAVAILABLE);
  });
});

describe('EntitlementKeySet: which keys count', () => {
  it('ignores keys without a kid, or with an empty one, and uses the rest', async () => {
    const { kid: _kid, ...anonymous } = k2.publicJwk;
    const gateway = await loopback(serving({ keys: [anonymous, { ...k2.publicJwk, kid: '' }, k1.publicJwk] }));
    const { keys } = keySetFor(gateway);
    await expect(keys.resolver({ network: true })('k1', 'ES256')).resolves.toEqual(k1.publicJwk);
    expect(await refusal(keys.resolver({ network: false })('', 'ES256'))).toEqual(notPublished(''));

    gateway.handler = serving({ keys: [anonymous, { ...k2.publicJwk, kid: '' }] });
    const only = keySetFor(gateway).keys;
    expect(await refusal(only.resolver({ network: true })('k2', 'ES256'))).toEqual(UNAVAILABLE);
  });

  it('drops a key with a private part and says which', async () => {
    const { kid: _kid, ...anonymous } = k2.publicJwk;
    const gateway = await loopback(
      serving({
        keys: [
          { ...k1.publicJwk, d: 'secret' },
          { ...anonymous, d: 'x' },
        ],
      }),
    );
    const { keys, logged } = keySetFor(gateway);
    expect(await refusal(keys.resolver({ network: true })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    expect(logged).toEqual([
      'Ignored gateway key "k1": it includes a private part',
      'Ignored gateway key "?": it includes a private part',
    ]);
  });

  it('picks, of two keys with one kid, the one whose type fits the alg', async () => {
    for (const order of [
      [k1.publicJwk, ed.publicJwk],
      [ed.publicJwk, k1.publicJwk],
    ]) {
      const gateway = await loopback(serving({ keys: order }));
      const resolve = keySetFor(gateway).keys.resolver({ network: true });
      await expect(resolve('k1', 'ES256')).resolves.toEqual(k1.publicJwk);
      await expect(resolve('k1', 'EdDSA')).resolves.toEqual(ed.publicJwk);
    }
    const pinned = new EntitlementKeySet({
      jwksUrl: 'http://127.0.0.1:9/.well-known/jwks.json',
      http: fetch,
      clock: manualClock(),
      pinnedKeys: [k1.publicJwk, ed.publicJwk],
    });
    await expect(pinned.resolver({ network: true })('k1', 'EdDSA')).resolves.toEqual(ed.publicJwk);
  });

  it('hands out the first of two keys with one kid when neither fits (the verifier then refuses it)', async () => {
    const other = await makeSigner('EdDSA', 'k1');
    const gateway = await loopback(serving({ keys: [ed.publicJwk, other.publicJwk] }));
    await expect(keySetFor(gateway).keys.resolver({ network: true })('k1', 'ES256')).resolves.toEqual(ed.publicJwk);
  });
});

describe('EntitlementKeySet: pinned keys', () => {
  it('refreshes nothing and refuses any other kid by name', async () => {
    const gateway = await loopback(serving({ keys: [k2.publicJwk] }));
    const { keys } = keySetFor(gateway, { pinnedKeys: [k1.publicJwk] });
    await keys.refresh();
    expect(await refusal(keys.resolver({ network: true })('k2', 'ES256'))).toEqual({
      code: 'KEY_UNKNOWN',
      message:
        'The entitlement document is signed with key "k2", which is not one of the keys pinned by your organisation\'s managed settings.',
    });
    await expect(keys.resolver({ network: false })('k1', 'ES256')).resolves.toEqual(k1.publicJwk);
    expect(gateway.requests).toHaveLength(0);
  });
});

describe('EntitlementKeySet: when it fetches', () => {
  it('coalesces concurrent refreshes into one request, and fetches again after', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }));
    const { keys } = keySetFor(gateway);
    await Promise.all([keys.refresh(), keys.refresh()]);
    expect(gateway.requests).toHaveLength(1);
    await keys.refresh();
    expect(gateway.requests).toHaveLength(2);
  });

  it('a lookup made while a fetch is under way waits for that fetch instead of refusing', async () => {
    let answer: (() => void) | undefined;
    const gateway = await loopback((request, response) => {
      answer = () => serving({ keys: [k1.publicJwk] })(request, response);
    });
    const { keys } = keySetFor(gateway);
    const refreshing = keys.refresh();
    await vi.waitFor(() => expect(answer).toBeDefined());
    const lookup = keys.resolver({ network: true })('k1', 'ES256');
    answer!();
    expect(await lookup).toMatchObject({ kid: 'k1' });
    await refreshing;
    // One request: the lookup joined the fetch under way.
    expect(gateway.requests).toHaveLength(1);
  });

  it('a lookup without network does not wait for a fetch under way', async () => {
    let answer: (() => void) | undefined;
    const gateway = await loopback((request, response) => {
      answer = () => serving({ keys: [k1.publicJwk] })(request, response);
    });
    const { keys } = keySetFor(gateway, { fetchTimeoutMs: 1000 });
    const refreshing = keys.refresh();
    let fetchEnded = false;
    void refreshing.then(() => (fetchEnded = true));
    await vi.waitFor(() => expect(answer).toBeDefined());
    expect(await refusal(keys.resolver({ network: false })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    // Refused at once, not after the fetch gave up.
    expect(fetchEnded).toBe(false);
    answer!();
    await refreshing;
  });

  it('never fetches for a lookup without network', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }));
    const { keys } = keySetFor(gateway);
    expect(await refusal(keys.resolver({ network: false })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    expect(gateway.requests).toHaveLength(0);
  });

  it('refetches for an unknown kid only once 30 s have passed since the last fetch', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }));
    const clock = manualClock();
    const { keys } = keySetFor(gateway, { clock });
    const resolve = keys.resolver({ network: true });
    await resolve('k1', 'ES256');
    gateway.handler = serving({ keys: [k1.publicJwk, k2.publicJwk] });
    clock.t += 29_999;
    expect(await refusal(resolve('k2', 'ES256'))).toEqual(notPublished('k2'));
    expect(gateway.requests).toHaveLength(1);
    clock.t += 1;
    await expect(resolve('k2', 'ES256')).resolves.toEqual(k2.publicJwk);
    expect(gateway.requests).toHaveLength(2);
  });

  it('uses the refetch interval it is given', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }));
    const clock = manualClock();
    const { keys } = keySetFor(gateway, { clock, minRefetchIntervalMs: 1_000 });
    const resolve = keys.resolver({ network: true });
    await resolve('k1', 'ES256');
    gateway.handler = serving({ keys: [k1.publicJwk, k2.publicJwk] });
    clock.t += 999;
    expect(await refusal(resolve('k2', 'ES256'))).toEqual(notPublished('k2'));
    clock.t += 1;
    await expect(resolve('k2', 'ES256')).resolves.toEqual(k2.publicJwk);
    expect(gateway.requests).toHaveLength(2);
  });
});

describe('EntitlementKeySet: the stored key set', () => {
  it('stores the public keys it fetched, and a failed save does not fail the fetch', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk, { ...k2.publicJwk, d: 'x' }] }));
    const store = memoryStore();
    await keySetFor(gateway, { store }).keys.refresh();
    expect(store.saved).toEqual({ keys: [k1.publicJwk] });

    const broken = memoryStore(undefined, true);
    const { keys, logged } = keySetFor(gateway, { store: broken });
    await keys.refresh();
    await expect(keys.resolver({ network: false })('k1', 'ES256')).resolves.toEqual(k1.publicJwk);
    expect(logged.at(-1)).toBe("Could not keep the gateway's signing keys for offline use: disk full");
  });

  it('does not bring stored keys back once the gateway published a set without them', async () => {
    const gateway = await loopback(serving({ keys: [] }));
    // The save fails, so the store still holds the withdrawn key.
    const store = memoryStore({ keys: [k1.publicJwk] }, true);
    const { keys } = keySetFor(gateway, { store });
    await keys.refresh();
    expect(await refusal(keys.resolver({ network: false })('k1', 'ES256'))).toEqual(UNAVAILABLE);
    expect(store.loads).toBe(0);
  });

  it('reads the store once, and says the keys are unavailable when it is empty', async () => {
    const gateway = await loopback(serving({ keys: [k1.publicJwk] }));
    const store = memoryStore();
    const { keys } = keySetFor(gateway, { store });
    const offline = keys.resolver({ network: false });
    expect(await refusal(offline('k1', 'ES256'))).toEqual(UNAVAILABLE);
    store.saved = { keys: [k1.publicJwk] };
    expect(await refusal(offline('k1', 'ES256'))).toEqual(UNAVAILABLE);
    expect(store.loads).toBe(1);
  });

  it('keeps keys fetched while the store was being read', async () => {
    const gateway = await loopback(serving({ keys: [k2.publicJwk] }));
    let release: () => void = () => undefined;
    const store = memoryStore({ keys: [k1.publicJwk] });
    const slow = {
      loadJwks: async () => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return store.loadJwks();
      },
      saveJwks: async () => undefined,
    };
    const { keys } = keySetFor(gateway, { store: slow });
    const lookup = keys.resolver({ network: false })('k2', 'ES256');
    await keys.refresh();
    release();
    await expect(lookup).resolves.toEqual(k2.publicJwk);
  });
});

describe('EntitlementKeySet: a plain JWK list', () => {
  it('answers with the key object as published', async () => {
    const published: JWK = { ...k1.publicJwk, x5c: ['ignored'] };
    const gateway = await loopback(serving({ keys: [published] }));
    await expect(keySetFor(gateway).keys.resolver({ network: true })('k1', 'ES256')).resolves.toEqual(published);
  });
});
