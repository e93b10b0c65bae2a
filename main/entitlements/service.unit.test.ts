import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EntitlementsView } from '../../shared/ipc';
import { MemorySecretStore } from '../node/adapters';
import { EntitlementCache } from './cache';
import { EntitlementService, NullEntitlementService, type EntitlementServiceOptions } from './service';
import { documentClaims, makeSigner, signClaims, TEST_ISSUER, type TestSigner } from './test-gateway';

// The entitlement service against a scripted gateway on fake timers: which requests it makes and when,
// what it shows, and what it says, without a network or real waiting. service.test.ts runs the same
// service against a loopback HTTP gateway; service.gateway.test.ts against the real one.

const SUB = 'user-ada';
const JKT = 'device-jkt';
const T0 = Date.UTC(2026, 11, 6, 6, 0, 0);
const SECRET_KEY = Buffer.alloc(32, 7);

let signer: TestSigner;

interface Call {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal | undefined;
}

type DocumentAnswer = { status: number; body: string } | Error | (() => Promise<Response>);

/** The gateway as the service sees it through its authorized fetch and its plain HTTP client. */
class ScriptedGateway {
  readonly calls: Call[] = [];
  readonly jwksCalls: string[] = [];
  document: DocumentAnswer = { status: 404, body: '' };
  /** Whether /v1/events answers with an open stream (else 503). */
  streams = true;
  /** While set, /v1/events answers only once this promise resolves. */
  streamGate: Promise<void> | undefined;
  writer: ReadableStreamDefaultController<Uint8Array> | undefined;

  readonly fetch = async (path: string, init?: RequestInit): Promise<Response> => {
    this.calls.push({
      path,
      headers: { ...(init?.headers as Record<string, string>) },
      signal: init?.signal ?? undefined,
    });
    if (path === '/v1/entitlements') {
      const answer = this.document;
      if (answer instanceof Error) throw answer;
      if (typeof answer === 'function') return answer();
      return new Response(answer.body, { status: answer.status });
    }
    if (path === '/v1/events') {
      await this.streamGate;
      if (!this.streams)
        return new Response('', { status: 503, headers: { 'content-type': 'application/problem+json' } });
      const signal = init!.signal!;
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => {
          this.writer = controller;
          signal.addEventListener('abort', () => {
            if (this.writer === controller) this.writer = undefined;
            try {
              controller.error(signal.reason);
            } catch {
              // already closed
            }
          });
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    }
    return new Response('', { status: 404 });
  };

  readonly http = async (input: string | URL): Promise<Response> => {
    this.jwksCalls.push(String(input));
    return Response.json({ keys: [signer.publicJwk] });
  };

  get documentFetches(): number {
    return this.calls.filter((call) => call.path === '/v1/entitlements').length;
  }

  get streamRequests(): number {
    return this.calls.filter((call) => call.path === '/v1/events').length;
  }

  push(event: string, data: unknown): void {
    this.writer!.enqueue(
      new TextEncoder().encode(`event: ${event}\ndata: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`),
    );
  }

  endStream(): void {
    const writer = this.writer!;
    this.writer = undefined;
    writer.close();
  }

  dropStream(): void {
    const writer = this.writer!;
    this.writer = undefined;
    writer.error(new Error('socket hang up'));
  }
}

let gateway: ScriptedGateway;
let userData: string;
let logs: string[];
let clockOffset: number;
const clock = { now: () => Date.now() + clockOffset };
const services: EntitlementService[] = [];

/** Lets promises, file I/O, signature checks and the stream's pipes settle, without moving the fake clock. */
async function settle(): Promise<void> {
  const until = performance.now() + 30;
  for (let i = 0; i < 30 || performance.now() < until; i++) {
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Waits, in real time (file writes), until `condition` holds. */
async function untilWritten(condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('Timed out waiting for the cache to be written');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function cacheHolds(names: string[], directory = join(userData, 'entitlements')): Promise<boolean> {
  const present = await readdir(directory).catch(() => [] as string[]);
  return names.every((name) => present.includes(name));
}

/** Settles until `condition` holds (a signature check can take a few real milliseconds under load). */
async function eventually(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('Timed out waiting for a condition');
    await settle();
  }
}

/** Moves the fake clock by `ms`, then settles. */
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
}

async function sign(ver: number, overrides: Record<string, unknown> = {}): Promise<string> {
  const nowSeconds = Math.floor(clock.now() / 1000);
  return signClaims(signer, documentClaims({ sub: SUB, jkt: JKT, ver, nowSeconds }, overrides));
}

async function publish(ver: number, overrides: Record<string, unknown> = {}): Promise<string> {
  const jws = await sign(ver, overrides);
  gateway.document = { status: 200, body: jws };
  return jws;
}

function makeService(overrides: Partial<EntitlementServiceOptions> = {}): EntitlementService {
  const service = new EntitlementService({
    gatewayUrl: 'https://gateway.test',
    fetch: gateway.fetch,
    http: gateway.http,
    secrets: new MemorySecretStore(SECRET_KEY),
    paths: { userData, logs: userData },
    clock,
    expectedSub: () => SUB,
    expectedJkt: () => JKT,
    issuer: TEST_ISSUER,
    log: (message) => logs.push(message),
    random: () => 1,
    ...overrides,
    // The scripted stream sends no keep-alives: no idle reconnection unless a test asks for one.
    timing: {
      pollIntervalMs: 1000,
      reconnect: { initialMs: 100, maxMs: 100 },
      jwksMinRefetchIntervalMs: 0,
      streamIdleTimeoutMs: 100_000_000,
      ...overrides.timing,
    },
  });
  services.push(service);
  return service;
}

function record(service: EntitlementService): EntitlementsView[] {
  const seen: EntitlementsView[] = [];
  service.onDidChange((view) => seen.push(view));
  return seen;
}

beforeAll(async () => {
  signer = await makeSigner('ES256', 'entitlements-2026');
});

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'], now: T0 });
  gateway = new ScriptedGateway();
  userData = await mkdtemp(join(tmpdir(), 'clearance-entitlements-unit-'));
  logs = [];
  clockOffset = 0;
});

afterEach(() => {
  for (const service of services.splice(0)) service.dispose();
  vi.useRealTimers();
});

describe('EntitlementService: the view', () => {
  it('shows nothing but the support contact while nobody is signed in', () => {
    expect(makeService({ expectedSub: () => undefined, supportContact: 'it-help@lab.example' }).view).toStrictEqual({
      status: 'none',
      models: [],
      live: 'offline',
      supportContact: 'it-help@lab.example',
    });
    expect(makeService({ expectedSub: () => undefined }).view).toStrictEqual({
      status: 'none',
      models: [],
      live: 'offline',
    });
  });

  it('shows a fetched document with when it was fetched, and connected once the stream is open', async () => {
    await publish(3);
    const service = makeService({ supportContact: 'it-help@lab.example' });
    await service.start();
    await settle();
    expect(service.view).toMatchObject({
      status: 'current',
      ver: 3,
      live: 'connected',
      lastRefresh: new Date(T0).toISOString(),
      supportContact: 'it-help@lab.example',
    });
    expect(service.view.lastError).toBeUndefined();
  });

  it('hides the document, and when it was fetched, once the signed-in device key is another', async () => {
    await publish(3);
    let jkt = JKT;
    const service = makeService({ expectedJkt: () => jkt });
    await service.start();
    jkt = 'another-device';
    expect(service.view.status).toBe('none');
    expect(service.view.lastRefresh).toBeUndefined();
    expect(service.view.models).toEqual([]);
  });

  it('hides the document once another person is signed in', async () => {
    await publish(3);
    let sub = SUB;
    const service = makeService({ expectedSub: () => sub });
    await service.start();
    sub = 'user-grace';
    expect(service.view.status).toBe('none');
    expect(service.view.lastRefresh).toBeUndefined();
  });
});

describe('EntitlementService: fetching the document', () => {
  it('asks for the signed document with the media types it accepts, under a time limit', async () => {
    await publish(1);
    await makeService().start();
    const call = gateway.calls.find((c) => c.path === '/v1/entitlements')!;
    expect(call.headers).toEqual({ Accept: 'application/entitlements+jwt, application/jwt' });
    expect(call.signal).toBeInstanceOf(AbortSignal);
    expect(gateway.jwksCalls).toEqual(['https://gateway.test/.well-known/jwks.json']);
  });

  it('trusts only the pinned keys when managed settings pin them: the key set is never fetched', async () => {
    await publish(1);
    const service = makeService({ pinnedKeys: [signer.publicJwk] });
    await service.start();
    expect(service.view.ver).toBe(1);
    expect(gateway.jwksCalls).toEqual([]);
  });

  it('says who must sign in, without asking the gateway, while no device key exists', async () => {
    const service = makeService({ expectedJkt: () => undefined });
    await service.start();
    expect(service.view.lastError).toBe('Sign in to see which models you may use.');
    expect(gateway.documentFetches).toBe(0);
  });

  it.each([
    [
      'a problem with its message',
      {
        type: 'about:blank',
        title: 'Forbidden',
        status: 403,
        message: 'Your account is suspended.',
        detail: 'ignored',
      },
      'The gateway refused the entitlements request (403 Forbidden): Your account is suspended.',
    ],
    [
      'a problem with a detail only',
      { type: 'about:blank', title: 'Forbidden', status: 403, detail: 'Device not enrolled.' },
      'The gateway refused the entitlements request (403 Forbidden): Device not enrolled.',
    ],
    [
      'a problem with neither',
      { type: 'about:blank', title: 'Forbidden', status: 403 },
      'The gateway refused the entitlements request (403 Forbidden).',
    ],
    [
      'a body that is not a problem',
      { hello: 'world' },
      'The gateway answered the entitlements request with HTTP 403.',
    ],
    ['a body that is not JSON', 'nope', 'The gateway answered the entitlements request with HTTP 403.'],
  ])('words a refusal with %s, and counts the gateway as reachable', async (_what, body, sentence) => {
    gateway.document = { status: 403, body: typeof body === 'string' ? body : JSON.stringify(body) };
    gateway.streams = false;
    const service = makeService();
    await service.start();
    expect(service.view.lastError).toBe(sentence);
    expect(service.view.live).toBe('polling');
    expect(logs).toContain(sentence);
  });

  it('counts a server error as the gateway being unreachable', async () => {
    gateway.document = { status: 500, body: '' };
    gateway.streams = false;
    const service = makeService();
    await service.start();
    expect(service.view.live).toBe('offline');
    expect(service.view.lastError).toBe('The gateway answered the entitlements request with HTTP 500.');
  });

  it('counts the last status below 500 as reachable', async () => {
    gateway.document = { status: 499, body: '' };
    gateway.streams = false;
    const service = makeService();
    await service.start();
    expect(service.view.live).toBe('polling');
  });

  it.each([
    [
      'a time-out',
      Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }),
      'it did not answer within 15 s.',
    ],
    [
      'a refused connection',
      Object.assign(new TypeError('fetch failed'), {
        cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' },
      }),
      'fetch failed (ECONNREFUSED).',
    ],
    [
      'a cause without a code',
      Object.assign(new TypeError('fetch failed'), { cause: { message: 'other side closed' } }),
      'fetch failed (other side closed).',
    ],
    ['a failure without a cause', new TypeError('fetch failed'), 'fetch failed.'],
  ])('words %s, and counts the gateway as unreachable', async (_what, error, words) => {
    gateway.document = error;
    gateway.streams = false;
    const service = makeService({ timing: { fetchTimeoutMs: 15_000, reconnect: { initialMs: 100, maxMs: 100 } } });
    await service.start();
    expect(service.view.lastError).toBe(`Could not reach the gateway: ${words}`);
    expect(service.view.live).toBe('offline');
    expect(logs).toContain('Could not fetch entitlements');
  });

  it('words a failure that is not an Error', async () => {
    gateway.document = () => Promise.reject('offline');
    gateway.streams = false;
    const service = makeService();
    await service.start();
    expect(service.view.lastError).toBe('Could not reach the gateway: offline.');
  });

  it('logs a refused document with its reason code and keeps the last good one', async () => {
    await publish(2);
    const service = makeService();
    await service.start();
    gateway.document = {
      status: 200,
      body: await signClaims(signer, documentClaims({ sub: SUB, jkt: 'other', ver: 3, nowSeconds: T0 / 1000 })),
    };
    const view = await service.refresh();
    expect(view.ver).toBe(2);
    expect(logs.at(-1)).toMatch(/^Refused an entitlement document \(DEVICE_BINDING\): /);
    expect(view.lastError).toBe(logs.at(-1)!.replace('Refused an entitlement document (DEVICE_BINDING): ', ''));
  });

  it('clears the last error once a document is accepted', async () => {
    gateway.document = new TypeError('fetch failed');
    const service = makeService();
    await service.start();
    expect(service.view.lastError).toBeDefined();
    await publish(1);
    expect((await service.refresh()).lastError).toBeUndefined();
  });

  it('fetches once more, not once per caller, when asked again while a fetch is under way', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    const before = gateway.documentFetches;
    const first = service.refresh();
    const second = service.refresh();
    const third = service.refresh();
    expect(second).toBe(first);
    expect(third).toBe(first);
    await first;
    expect(gateway.documentFetches - before).toBe(2);
  });

  it('refetches after a chat call was forbidden', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    const before = gateway.documentFetches;
    service.onChatForbidden();
    await settle();
    expect(gateway.documentFetches - before).toBe(1);
  });

  it('reconnects the stream at once and fetches, when asked', async () => {
    await publish(1);
    gateway.streams = false;
    const service = makeService({
      timing: { reconnect: { initialMs: 60_000, maxMs: 60_000 }, pollIntervalMs: 600_000 },
    });
    await service.start();
    await settle();
    const streams = gateway.streamRequests;
    const fetches = gateway.documentFetches;
    gateway.streams = true;
    await service.reconnect();
    await settle();
    expect(gateway.streamRequests).toBe(streams + 1);
    expect(gateway.documentFetches).toBeGreaterThan(fetches);
    expect(service.view.live).toBe('connected');
  });
});

describe('EntitlementService: versions', () => {
  it('records the highest version only when it rises, and refuses an older one after a restart', async () => {
    await publish(5);
    const first = makeService();
    await first.start();
    await publish(5);
    await first.refresh();
    await untilWritten(() => cacheHolds(['versions.bin', 'document.bin']));
    first.dispose();
    await publish(4);
    const second = makeService();
    await second.start();
    expect(second.view.status).toBe('current');
    expect(second.view.ver).toBe(5);
    expect(second.view.lastError).toMatch(/version 4, older than version 5/);
  });
});

describe('EntitlementService: lifecycle', () => {
  it('starts once: a second start neither fetches nor opens another stream', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await service.start();
    await settle();
    expect(gateway.documentFetches).toBe(1);
    expect(gateway.streamRequests).toBe(1);
  });

  it('does nothing once disposed: no start, no fetch, no announcement', async () => {
    await publish(1);
    const service = makeService();
    const seen = record(service);
    service.dispose();
    await service.start();
    expect(await service.refresh()).toStrictEqual(service.view);
    expect(gateway.calls).toEqual([]);
    expect(seen).toEqual([]);
    service.dispose();
  });

  it('does not bring back a document fetched while signing out', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    const jws = await sign(2);
    let answer: ((response: Response) => void) | undefined;
    gateway.document = () => new Promise<Response>((resolve) => (answer = resolve));
    const refreshed = service.refresh();
    await settle();
    await service.signOut();
    answer!(new Response(jws, { status: 200 }));
    await refreshed;
    await settle();
    expect(service.view.status).toBe('none');
    expect(service.view.lastError).toBeUndefined();
  });

  it('does not record a failure that arrives after signing out', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    let fail: ((error: Error) => void) | undefined;
    gateway.document = () => new Promise<Response>((_resolve, reject) => (fail = reject));
    const refreshed = service.refresh();
    await settle();
    await service.signOut();
    fail!(new TypeError('fetch failed'));
    await refreshed;
    expect(service.view.lastError).toBeUndefined();
    expect(service.view.live).toBe('offline');
  });

  it('does not record a refusal that arrives after signing out', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    let answer: ((response: Response) => void) | undefined;
    gateway.document = () => new Promise<Response>((resolve) => (answer = resolve));
    const refreshed = service.refresh();
    await settle();
    await service.signOut();
    answer!(new Response('nope', { status: 503 }));
    await refreshed;
    expect(service.view.lastError).toBeUndefined();
  });

  it('does not accept a document for a person who signed out while it was being verified', async () => {
    await publish(1);
    let sub: string | undefined = SUB;
    const service = makeService({ expectedSub: () => sub });
    await service.start();
    await publish(2);
    let answer: ((response: Response) => void) | undefined;
    const body = (gateway.document as { body: string }).body;
    gateway.document = () => new Promise<Response>((resolve) => (answer = resolve));
    const refreshed = service.refresh();
    await settle();
    answer!(new Response(body, { status: 200 }));
    sub = 'user-grace';
    await refreshed;
    sub = SUB;
    expect(service.view.ver).toBe(1);
  });

  it('stops starting when signed out while the cache loads: no stream, no fetch', async () => {
    const service = makeService();
    const started = service.start();
    await service.signOut();
    await started;
    await settle();
    expect(gateway.calls).toEqual([]);
  });

  it('stops polling, renewal and the stream on sign-out', async () => {
    await publish(1);
    gateway.streams = false;
    const service = makeService();
    await service.start();
    await advance(1000);
    expect(gateway.documentFetches).toBe(2);
    await service.signOut();
    const calls = gateway.calls.length;
    await advance(60_000);
    expect(gateway.calls.length).toBe(calls);
    expect(await readdir(join(userData, 'entitlements'))).not.toContain('document.bin');
  });

  it('keeps the cache in the folder it is given, for the person it is given', async () => {
    await publish(1);
    const directory = join(userData, 'people', 'ada', 'entitlements');
    const service = makeService({ cacheDirectory: directory, cacheAccount: 'ada' });
    await service.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin'], directory));
    expect(service.cacheFiles.document).toBe(join(directory, 'document.bin'));
    expect((await readdir(directory)).sort()).toEqual(['data-key.bin', 'document.bin', 'jwks.bin', 'versions.bin']);
  });

  it('keeps the cache in <userData>/entitlements by default, without a data key', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    expect(service.cacheFiles.document).toBe(join(userData, 'entitlements', 'document.bin'));
    expect((await readdir(join(userData, 'entitlements'))).sort()).toEqual([
      'document.bin',
      'jwks.bin',
      'versions.bin',
    ]);
  });

  it('announces a view once, not again while nothing changed', async () => {
    await publish(1);
    const service = makeService();
    const seen = record(service);
    await service.start();
    await settle();
    const count = seen.length;
    await service.refresh();
    expect(seen.length).toBe(count);
    expect(new Set(seen.map((view) => JSON.stringify(view))).size).toBe(seen.length);
  });
});

describe('EntitlementService: the cached document', () => {
  it('shows the cached document at start, verified offline with the cached keys, and says why it ignores one', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    const jwksCalls = gateway.jwksCalls.length;

    gateway.document = new TypeError('fetch failed');
    const second = makeService();
    await second.start();
    expect(second.view).toMatchObject({ status: 'current', ver: 1, lastRefresh: new Date(T0).toISOString() });
    expect(gateway.jwksCalls.length).toBe(jwksCalls);

    const third = makeService({ expectedJkt: () => 'another-device' });
    await third.start();
    expect(third.view.status).toBe('none');
    expect(logs.some((line) => /^Ignored the cached entitlement document: /.test(line))).toBe(true);
  });

  it('shows a cached document past exp as stale rather than dropping it', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    gateway.document = new TypeError('fetch failed');
    clockOffset = 3_600_000;
    const second = makeService();
    await second.start();
    expect(second.view).toMatchObject({ status: 'stale', ver: 1 });
  });

  it('does not read the cache for nobody', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    gateway.document = new TypeError('fetch failed');
    const signedOut = makeService({ expectedSub: () => undefined });
    const seen = record(signedOut);
    await signedOut.start();
    expect(seen.every((view) => view.status === 'none')).toBe(true);
    const noKey = makeService({ expectedJkt: () => undefined });
    await noKey.start();
    expect(noKey.view.status).toBe('none');
  });
});

describe('EntitlementService: live updates', () => {
  it('refetches for a newer version, for a change without a version, and for garbled data, not for a version it has', async () => {
    await publish(4);
    const service = makeService({ timing: { renewAtFraction: 0.99, reconnect: { initialMs: 100, maxMs: 100 } } });
    await service.start();
    await settle();
    const fetches = () => gateway.documentFetches;
    const base = fetches();
    gateway.push('entitlements.changed', { ver: 4 });
    gateway.push('entitlements.changed', { ver: 3 });
    await settle();
    expect(fetches()).toBe(base);
    gateway.push('entitlements.changed', { ver: 5 });
    await settle();
    expect(fetches()).toBe(base + 1);
    gateway.push('entitlements.changed', {});
    await settle();
    expect(fetches()).toBe(base + 2);
    gateway.push('entitlements.changed', { ver: '9' });
    await settle();
    expect(fetches()).toBe(base + 3);
    gateway.push('entitlements.changed', 'not json');
    await settle();
    expect(fetches()).toBe(base + 4);
    gateway.push('something.else', { ver: 9 });
    await settle();
    expect(fetches()).toBe(base + 4);
  });

  it('refetches for a change about the version it has once that version has expired', async () => {
    await publish(4);
    const service = makeService({
      timing: { renewAtFraction: 0.99, pollIntervalMs: 600_000, reconnect: { initialMs: 100, maxMs: 100 } },
    });
    await service.start();
    await settle();
    clockOffset = 3_600_000;
    const base = gateway.documentFetches;
    gateway.push('entitlements.changed', { ver: 4 });
    await settle();
    expect(gateway.documentFetches).toBe(base + 1);
  });

  it('refetches for any change while it has no document', async () => {
    gateway.document = { status: 404, body: '' };
    const service = makeService();
    await service.start();
    await settle();
    const base = gateway.documentFetches;
    gateway.push('entitlements.changed', { ver: 1 });
    await settle();
    expect(gateway.documentFetches).toBe(base + 1);
  });

  it.each([
    [
      { reason: 'DEVICE_REVOKED', message: 'Removed by IT.', detail: 'ignored' },
      { reason: 'DEVICE_REVOKED', message: 'Removed by IT.' },
    ],
    [
      { reason: 'DEVICE_REVOKED', detail: 'Removed.' },
      { reason: 'DEVICE_REVOKED', message: 'Removed.' },
    ],
    [{ reason: 7, message: 8, detail: 9 }, {}],
    ['garbled', {}],
  ])('passes on session.revoked %j with what it can use', async (data, expected) => {
    await publish(1);
    const service = makeService();
    await service.start();
    await settle();
    clockOffset = 5000;
    const revocations: unknown[] = [];
    service.onDidRevokeSession((revocation) => revocations.push(revocation));
    gateway.push('session.revoked', data);
    await settle();
    expect(revocations).toStrictEqual([{ ...expected, receivedAt: new Date(Date.now() + 5000).toISOString() }]);
  });

  it('falls back to polling when the stream drops, says so once, and stops polling when it is back', async () => {
    await publish(1);
    const service = makeService({
      timing: { pollIntervalMs: 1000, renewAtFraction: 0.99, reconnect: { initialMs: 5000, maxMs: 5000 } },
    });
    await service.start();
    await settle();
    expect(service.view.live).toBe('connected');
    const base = gateway.documentFetches;
    gateway.streams = false;
    gateway.dropStream();
    await settle();
    expect(service.view.live).toBe('polling');
    expect(logs).toContain('Entitlement updates fell back to polling: socket hang up');
    expect(gateway.documentFetches).toBe(base + 1);
    await advance(1000);
    expect(gateway.documentFetches).toBe(base + 2);
    await advance(1000);
    expect(gateway.documentFetches).toBe(base + 3);
    expect(logs.filter((line) => line.startsWith('Entitlement updates fell back'))).toHaveLength(1);

    gateway.streams = true;
    await advance(5000);
    expect(service.view.live).toBe('connected');
    const back = gateway.documentFetches;
    await advance(3000);
    expect(gateway.documentFetches).toBe(back);
  });

  it('fetches when the stream opens after being down, or while the gateway was unreachable, not on a plain open', async () => {
    gateway.document = new TypeError('fetch failed');
    gateway.streams = false;
    const service = makeService({ timing: { pollIntervalMs: 600_000, reconnect: { initialMs: 1000, maxMs: 1000 } } });
    await service.start();
    await settle();
    expect(service.view.live).toBe('offline');
    await publish(1);
    gateway.streams = true;
    const before = gateway.documentFetches;
    await advance(1000);
    expect(gateway.documentFetches).toBe(before + 1);
    await eventually(() => service.view.ver === 1);
    expect(service.view).toMatchObject({ live: 'connected', ver: 1 });
  });

  it('does not refetch when the stream opens the first time', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await settle();
    expect(service.view.live).toBe('connected');
    expect(gateway.documentFetches).toBe(1);
  });

  it('renews the document three quarters into its life while the stream is up', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 600_000, reconnect: { initialMs: 100, maxMs: 100 } } });
    await service.start();
    await settle();
    // documentClaims: iat = now - 10 s, exp = now + 600 s, so three quarters in is 447.5 s after now.
    await advance(447_499);
    expect(gateway.documentFetches).toBe(1);
    await advance(1);
    expect(gateway.documentFetches).toBe(2);
  });

  it('renews at the fraction it is given', async () => {
    await publish(1);
    const service = makeService({
      timing: { renewAtFraction: 0.5, pollIntervalMs: 600_000, reconnect: { initialMs: 100, maxMs: 100 } },
    });
    await service.start();
    await settle();
    await advance(294_999);
    expect(gateway.documentFetches).toBe(1);
    await advance(1);
    expect(gateway.documentFetches).toBe(2);
  });

  it('renews after the poll interval when the renewal time has passed', async () => {
    await publish(1, { iat: Math.floor(T0 / 1000) - 600, exp: Math.floor(T0 / 1000) + 60 });
    const service = makeService({ timing: { pollIntervalMs: 5000, reconnect: { initialMs: 100, maxMs: 100 } } });
    await service.start();
    await settle();
    await advance(4999);
    expect(gateway.documentFetches).toBe(1);
    await advance(1);
    expect(gateway.documentFetches).toBe(2);
  });
});

describe('EntitlementService: expiry', () => {
  it('turns stale at exp by itself, says so, and fetches', async () => {
    await publish(1);
    const service = makeService({
      timing: { pollIntervalMs: 6_000_000, renewAtFraction: 1.5, reconnect: { initialMs: 100, maxMs: 100 } },
    });
    const seen = record(service);
    await service.start();
    await settle();
    await advance(599_999);
    expect(service.view.status).toBe('current');
    expect(gateway.documentFetches).toBe(1);
    gateway.document = new TypeError('fetch failed');
    await advance(1);
    expect(seen.at(-1)?.status).toBe('stale');
    expect(logs).toContain('Entitlement document version 1 expired; every model is unavailable until it is renewed');
    expect(gateway.documentFetches).toBe(2);
  });

  it('waits again when the timer fires before the app clock reaches exp', async () => {
    await publish(1);
    const service = makeService({
      timing: { pollIntervalMs: 6_000_000, renewAtFraction: 1.5, reconnect: { initialMs: 100, maxMs: 100 } },
    });
    const seen = record(service);
    await service.start();
    await settle();
    clockOffset = -1000;
    await advance(600_000);
    expect(service.view.status).toBe('current');
    expect(gateway.documentFetches).toBe(1);
    await advance(999);
    expect(service.view.status).toBe('current');
    await advance(1);
    expect(seen.at(-1)?.status).toBe('stale');
  });

  it('arms no timer that would fire at once for a document valid longer than a timer can wait', async () => {
    const now = Math.floor(T0 / 1000);
    await publish(1, { iat: now, exp: now + 30 * 24 * 3600 });
    const service = makeService({
      timing: { pollIntervalMs: 6_000_000, renewAtFraction: 0.99, reconnect: { initialMs: 100, maxMs: 100 } },
    });
    await service.start();
    await settle();
    await advance(1000);
    expect(gateway.documentFetches).toBe(1);
    expect(logs.filter((line) => line.includes('expired'))).toEqual([]);
  });

  it('arms no renewal that would fire at once for a renewal further away than a timer can wait', async () => {
    const now = Math.floor(T0 / 1000);
    await publish(1, { iat: now, exp: now + 60 * 24 * 3600 });
    const service = makeService({
      timing: { pollIntervalMs: 6_000_000, renewAtFraction: 0.75, reconnect: { initialMs: 100, maxMs: 100 } },
    });
    await service.start();
    await settle();
    await advance(1000);
    expect(gateway.documentFetches).toBe(1);
  });

  it('does not fetch at exp once signed out', async () => {
    await publish(1);
    const service = makeService({
      timing: { pollIntervalMs: 6_000_000, renewAtFraction: 1.5, reconnect: { initialMs: 100, maxMs: 100 } },
    });
    await service.start();
    await settle();
    await service.signOut();
    const calls = gateway.calls.length;
    await advance(600_000);
    expect(gateway.calls.length).toBe(calls);
  });
});

describe('EntitlementService: each check, one at a time', () => {
  it('reconnects the stream after the jittered backoff of the random source it is given', async () => {
    await publish(1);
    const service = makeService({ timing: { reconnect: { initialMs: 1000, maxMs: 1000 }, pollIntervalMs: 600_000 } });
    await service.start();
    await settle();
    gateway.dropStream();
    await settle();
    const streams = gateway.streamRequests;
    await advance(999);
    expect(gateway.streamRequests).toBe(streams);
    await advance(1);
    expect(gateway.streamRequests).toBe(streams + 1);
  });

  it('passes its log to the event stream, the key set and the cache', async () => {
    await publish(1);
    gateway.streams = false;
    const failingHttp = async (): Promise<Response> => new Response('', { status: 500 });
    const service = makeService({ http: failingHttp });
    await service.start();
    await settle();
    expect(logs).toContain(
      "Event stream down: The gateway's event stream answered HTTP 503 (application/problem+json).",
    );
    expect(logs).toContain(
      "Could not fetch the gateway's signing keys from https://gateway.test/.well-known/jwks.json",
    );
    service.dispose();
    await mkdir(join(userData, 'entitlements', 'document.bin'), { recursive: true });
    await makeService().start();
    expect(logs).toContain(`Could not read ${join(userData, 'entitlements', 'document.bin')}`);
  });

  it('says when it cannot keep the document or its version, and keeps showing it', async () => {
    await publish(1);
    const memory = new MemorySecretStore(SECRET_KEY);
    const service = makeService({
      secrets: {
        isAvailable: () => true,
        backend: () => 'os',
        encrypt: () => {
          throw new Error('keyring locked');
        },
        decrypt: (cipher) => memory.decrypt(cipher),
      },
    });
    await service.start();
    await settle();
    expect(service.view.ver).toBe(1);
    expect(logs).toContain('Could not record the entitlement version');
    expect(logs).toContain('Could not keep entitlements for offline use');
  });

  it('says when it cannot remove the cached document on sign-out', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await untilWritten(() => cacheHolds(['document.bin']));
    await rm(service.cacheFiles.document);
    await mkdir(join(service.cacheFiles.document, 'inside'), { recursive: true });
    await service.signOut();
    expect(logs).toContain('Could not remove cached entitlements');
    expect(service.view.status).toBe('none');
  });

  it('logs a failure that is not an entitlement refusal as unexpected', async () => {
    await publish(1);
    let failNext = false;
    const service = makeService({
      clock: {
        now: () => {
          if (failNext) {
            failNext = false;
            throw new Error('clock unavailable');
          }
          return Date.now();
        },
      },
    });
    await service.start();
    failNext = true;
    const view = await service.refresh();
    expect(logs).toContain('Refused an entitlement document (UNEXPECTED): clock unavailable');
    expect(view.lastError).toBe('clock unavailable');
  });

  it('reconnects without failing before it has started', async () => {
    await publish(1);
    const service = makeService();
    await expect(service.reconnect()).resolves.toMatchObject({ status: 'current', ver: 1 });
  });

  it('signs out without failing before it has started', async () => {
    const service = makeService();
    await expect(service.signOut()).resolves.toBeUndefined();
  });

  it('stops starting when disposed while the cache loads', async () => {
    const service = makeService();
    const started = service.start();
    service.dispose();
    await started;
    await settle();
    expect(gateway.calls).toEqual([]);
  });

  it('stops fetching again once disposed, even when asked again meanwhile', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    let answer: ((response: Response) => void) | undefined;
    const body = (gateway.document as { body: string }).body;
    gateway.document = () => new Promise<Response>((resolve) => (answer = resolve));
    const before = gateway.documentFetches;
    const first = service.refresh();
    await settle();
    void service.refresh();
    service.dispose();
    answer!(new Response(body, { status: 200 }));
    await first;
    await settle();
    expect(gateway.documentFetches).toBe(before + 1);
  });

  it('does not accept a document that arrives after it was disposed', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    const body = await sign(2);
    let answer: ((response: Response) => void) | undefined;
    gateway.document = () => new Promise<Response>((resolve) => (answer = resolve));
    const refreshed = service.refresh();
    await settle();
    service.dispose();
    answer!(new Response(body, { status: 200 }));
    await refreshed;
    expect(service.view.ver).toBe(1);
  });

  it('is offline, and starts afresh without an extra fetch, after signing out and in again', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 600_000 } });
    await service.start();
    await settle();
    gateway.dropStream();
    await settle();
    await service.signOut();
    expect(service.view.live).toBe('offline');
    const before = gateway.documentFetches;
    await service.start();
    await settle();
    expect(service.view.live).toBe('connected');
    expect(gateway.documentFetches).toBe(before + 1);
  });

  it('does not read the cache, nor complain about it, for nobody or without a device key', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    gateway.document = new TypeError('fetch failed');
    await makeService({ expectedSub: () => undefined }).start();
    await makeService({ expectedJkt: () => undefined }).start();
    expect(logs.filter((line) => line.startsWith('Ignored the cached entitlement document'))).toEqual([]);
  });

  it('fetches on a reopened stream only after it was down, not after a clean end', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 600_000, renewAtFraction: 0.99 } });
    await service.start();
    await settle();
    gateway.dropStream();
    await settle();
    await advance(100);
    expect(service.view.live).toBe('connected');
    const before = gateway.documentFetches;
    gateway.endStream();
    await settle();
    await advance(100);
    expect(service.view.live).toBe('connected');
    expect(gateway.documentFetches).toBe(before);
  });

  it('polls once per interval however often the stream fails to reconnect', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 1000, reconnect: { initialMs: 100, maxMs: 100 } } });
    await service.start();
    await settle();
    gateway.streams = false;
    gateway.dropStream();
    await settle();
    const before = gateway.documentFetches;
    for (let i = 0; i < 30; i++) await advance(100);
    expect(gateway.documentFetches - before).toBe(3);
  });

  it('does not renew while polling when the stream fails before it ever opened', async () => {
    await publish(1);
    let release: (() => void) | undefined;
    gateway.streamGate = new Promise<void>((resolve) => (release = resolve));
    gateway.streams = false;
    const service = makeService({
      timing: { pollIntervalMs: 600_000, reconnect: { initialMs: 600_000, maxMs: 600_000 } },
    });
    await service.start();
    release!();
    await settle();
    expect(service.view.live).toBe('polling');
    const before = gateway.documentFetches;
    await advance(448_000);
    expect(gateway.documentFetches).toBe(before);
  });

  it('renews after the poll interval when the renewal time is exactly now', async () => {
    const now = Math.floor(T0 / 1000);
    await publish(1, { iat: now - 750, exp: now + 250 });
    const service = makeService({ timing: { pollIntervalMs: 5000 } });
    await service.start();
    await settle();
    await advance(4999);
    expect(gateway.documentFetches).toBe(1);
    await advance(1);
    expect(gateway.documentFetches).toBe(2);
  });

  it('neither renews nor fetches at exp when refreshed without being started', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 5000 } });
    await service.refresh();
    await advance(700_000);
    expect(gateway.documentFetches).toBe(1);
    expect(service.view.status).toBe('stale');
  });

  it('arms no expiry for a document that is already at exp', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    gateway.document = new TypeError('fetch failed');
    gateway.streams = false;
    clockOffset = 600_000;
    const second = makeService({
      timing: { pollIntervalMs: 600_000, reconnect: { initialMs: 600_000, maxMs: 600_000 } },
    });
    await second.start();
    const before = gateway.documentFetches;
    await advance(10);
    expect(second.view.status).toBe('stale');
    expect(logs.filter((line) => line.includes('expired;'))).toEqual([]);
    expect(gateway.documentFetches).toBe(before);
  });

  it('uses its default timings: a 15 s fetch limit and a 60 s poll', async () => {
    gateway.document = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    gateway.streams = false;
    const service = new EntitlementService({
      gatewayUrl: 'https://gateway.test',
      fetch: gateway.fetch,
      http: gateway.http,
      secrets: new MemorySecretStore(SECRET_KEY),
      paths: { userData, logs: userData },
      clock,
      expectedSub: () => SUB,
      expectedJkt: () => JKT,
      issuer: TEST_ISSUER,
    });
    services.push(service);
    await service.start();
    expect(service.view.lastError).toBe('Could not reach the gateway: it did not answer within 15 s.');
    const before = gateway.documentFetches;
    await advance(59_999);
    expect(gateway.documentFetches).toBe(before);
    await advance(1);
    expect(gateway.documentFetches).toBe(before + 1);
  });
});

describe('EntitlementService: the last survivors', () => {
  it('shows the signed-out view, offline, even while its stream is connected', async () => {
    await publish(1);
    let sub: string | undefined = SUB;
    const service = makeService({ expectedSub: () => sub, supportContact: 'it-help@lab.example' });
    await service.start();
    await settle();
    expect(service.view.live).toBe('connected');
    sub = undefined;
    expect(service.view).toStrictEqual({
      status: 'none',
      models: [],
      live: 'offline',
      supportContact: 'it-help@lab.example',
    });
  });

  it('passes on only session.revoked as a revocation', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await settle();
    const revocations: unknown[] = [];
    service.onDidRevokeSession((revocation) => revocations.push(revocation));
    gateway.push('something.else', { reason: 'DEVICE_REVOKED' });
    gateway.push('entitlements.changed', { ver: 1 });
    await settle();
    expect(revocations).toEqual([]);
  });

  it('fetches after the stream is down and again when it reopens', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 600_000, renewAtFraction: 0.99 } });
    await service.start();
    await settle();
    const before = gateway.documentFetches;
    gateway.dropStream();
    await settle();
    await advance(100);
    await eventually(() => gateway.documentFetches === before + 2);
    expect(service.view.live).toBe('connected');
  });

  it('announces the open stream, and fetches on opening while the gateway was unreachable, even if the stream never failed', async () => {
    gateway.document = new TypeError('fetch failed');
    let release: (() => void) | undefined;
    gateway.streamGate = new Promise<void>((resolve) => (release = resolve));
    const service = makeService({ timing: { pollIntervalMs: 600_000 } });
    const seen = record(service);
    await service.start();
    expect(service.view.live).toBe('offline');
    await publish(1);
    const before = gateway.documentFetches;
    release!();
    await eventually(() => service.view.ver === 1);
    expect(gateway.documentFetches).toBe(before + 1);
    expect(seen.at(-1)).toMatchObject({ live: 'connected', ver: 1 });
  });

  it('announces the stream opening when nothing else changes', async () => {
    await publish(1);
    let release: (() => void) | undefined;
    gateway.streamGate = new Promise<void>((resolve) => (release = resolve));
    const service = makeService({ timing: { pollIntervalMs: 600_000 } });
    const seen = record(service);
    await service.start();
    expect(service.view.live).toBe('polling');
    const before = gateway.documentFetches;
    release!();
    await eventually(() => seen.at(-1)?.live === 'connected');
    expect(gateway.documentFetches).toBe(before);
  });

  it('shows and announces the cached document before the first fetch answers, and turns it stale at exp meanwhile', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    gateway.document = () => new Promise<Response>(() => undefined);
    const second = makeService({ timing: { pollIntervalMs: 6_000_000, fetchTimeoutMs: 6_000_000 } });
    const seen = record(second);
    void second.start();
    await eventually(() => seen.length > 0);
    expect(seen.at(-1)).toMatchObject({ status: 'current', ver: 1 });
    expect(second.checkModel('haiku-4')).toEqual({ allowed: true });
    await advance(600_000);
    expect(seen.at(-1)).toMatchObject({ status: 'stale', ver: 1 });
  });

  it('announces the fall-back to polling before the refetch answers', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 6_000_000 } });
    const seen = record(service);
    await service.start();
    await settle();
    gateway.document = () => new Promise<Response>(() => undefined);
    gateway.streams = false;
    gateway.dropStream();
    await eventually(() => seen.at(-1)?.live === 'polling');
  });

  it('verifies the cached document offline only: a key the cached key set lacks is not fetched', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    const other = await makeSigner('ES256', 'entitlements-other');
    await new EntitlementCache({
      secrets: new MemorySecretStore(SECRET_KEY),
      directory: join(userData, 'entitlements'),
    }).saveJwks({ keys: [other.publicJwk] });
    gateway.document = () => new Promise<Response>(() => undefined);
    const jwksCalls = gateway.jwksCalls.length;
    const second = makeService({ timing: { fetchTimeoutMs: 6_000_000 } });
    void second.start();
    await eventually(() => logs.some((line) => line.startsWith('Ignored the cached entitlement document')));
    expect(gateway.jwksCalls.length).toBe(jwksCalls);
    expect(second.view.status).toBe('none');
  });

  it('does not accept a document whose check was under way while signing out', async () => {
    await publish(1);
    let signOutNow: (() => void) | undefined;
    const service = makeService({
      clock: {
        now: () => {
          const act = signOutNow;
          signOutNow = undefined;
          act?.();
          return Date.now();
        },
      },
    });
    await service.start();
    await publish(2);
    signOutNow = () => void service.signOut();
    await service.refresh();
    await settle();
    expect(service.view.status).toBe('none');
    expect(service.view.ver).toBeUndefined();
  });

  it('shows and announces the cached document, and turns it stale at exp, while the stream is refused and the fetch hangs', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    await untilWritten(() => cacheHolds(['document.bin', 'versions.bin', 'jwks.bin']));
    first.dispose();
    gateway.document = () => new Promise<Response>(() => undefined);
    gateway.streams = false;
    const second = makeService({
      timing: {
        pollIntervalMs: 6_000_000,
        fetchTimeoutMs: 6_000_000,
        reconnect: { initialMs: 6_000_000, maxMs: 6_000_000 },
      },
    });
    const seen = record(second);
    void second.start();
    await eventually(() => seen.length > 0);
    await settle();
    expect(second.view.live).toBe('offline');
    expect(seen.at(-1)).toMatchObject({ status: 'current', ver: 1 });
    expect(second.checkModel('haiku-4')).toEqual({ allowed: true });
    await advance(600_000);
    expect(seen.at(-1)).toMatchObject({ status: 'stale', ver: 1 });
  });

  it('does not renew after signing out', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 6_000_000 } });
    await service.start();
    await settle();
    await service.signOut();
    const calls = gateway.documentFetches;
    await advance(500_000);
    expect(gateway.documentFetches).toBe(calls);
  });

  it('drops the old renewal when a newer document arrives', async () => {
    await publish(1);
    const service = makeService({ timing: { pollIntervalMs: 6_000_000 } });
    await service.start();
    await settle();
    await advance(100_000);
    await publish(2);
    await service.refresh();
    const calls = gateway.documentFetches;
    // The first document's renewal was due 447.5 s after start; the second's is 100 s later.
    await advance(348_000);
    expect(gateway.documentFetches).toBe(calls);
    await advance(100_000);
    expect(gateway.documentFetches).toBe(calls + 1);
    // And the first document's expiry timer went with it: the second expires once.
    await advance(152_000);
    expect(logs.filter((line) => line.includes('expired;'))).toEqual([
      'Entitlement document version 2 expired; every model is unavailable until it is renewed',
    ]);
  });
});

describe('NullEntitlementService', () => {
  it('asks for the support contact each time when given a function', async () => {
    const state: { contact?: string } = {};
    const none = new NullEntitlementService(() => state.contact);
    expect(none.view).toStrictEqual({ status: 'none', models: [], live: 'offline' });
    state.contact = 'it-help@lab.example';
    expect(none.view).toStrictEqual({
      status: 'none',
      models: [],
      live: 'offline',
      supportContact: 'it-help@lab.example',
    });
    expect(await none.refresh()).toStrictEqual(none.view);
    expect(new NullEntitlementService().view).toStrictEqual({ status: 'none', models: [], live: 'offline' });
    const seen: unknown[] = [];
    none.onDidChange((view) => seen.push(view)).dispose();
    none.onDidRevokeSession((revocation) => seen.push(revocation)).dispose();
    none.onChatForbidden();
    none.dispose();
    expect(seen).toEqual([]);
  });
});
