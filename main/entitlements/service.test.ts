import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EntitlementsView } from '../../shared/ipc';
import { MemorySecretStore } from '../node/adapters';
import { EntitlementService, NullEntitlementService, type EntitlementServiceOptions } from './service';
import { documentClaims, makeSigner, signClaims, TestGateway, TEST_ISSUER, type TestSigner } from './test-gateway';

const SUB = 'user-ada';
const SECRET_KEY = Buffer.alloc(32, 5);

/** The app's clock, which tests can move relative to real time. */
class TestClock {
  offset = 0;
  readonly now = (): number => Date.now() + this.offset;
}

let signer: TestSigner;
let jkt: string;
let gateway: TestGateway;
let clock: TestClock;
let userData: string;
let logs: string[];
const services: EntitlementService[] = [];

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function nextChange(
  service: EntitlementService,
  matches: (view: EntitlementsView) => boolean,
): Promise<EntitlementsView> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('No matching onDidChange within 5 s')), 5000);
    const subscription = service.onDidChange((view) => {
      if (!matches(view)) return;
      clearTimeout(timer);
      subscription.dispose();
      resolve(view);
    });
  });
}

/** Signs a document for the signed-in user at the app clock's time and has the gateway serve it. */
async function publish(ver: number, overrides: Record<string, unknown> = {}): Promise<string> {
  const nowSeconds = Math.floor(clock.now() / 1000);
  const jws = await signClaims(signer, documentClaims({ sub: SUB, jkt, ver, nowSeconds }, overrides));
  gateway.document = () => ({ status: 200, body: jws });
  return jws;
}

function makeService(overrides: Partial<EntitlementServiceOptions> = {}): EntitlementService {
  const service = new EntitlementService({
    gatewayUrl: gateway.url,
    fetch: gateway.fetch,
    http: fetch,
    secrets: new MemorySecretStore(SECRET_KEY),
    paths: { userData, logs: userData },
    clock,
    expectedSub: () => SUB,
    expectedJkt: () => jkt,
    issuer: TEST_ISSUER,
    supportContact: 'it-help@lab.example',
    log: (message) => logs.push(message),
    timing: { pollIntervalMs: 100, reconnect: { initialMs: 20, maxMs: 100 }, jwksMinRefetchIntervalMs: 0 },
    ...overrides,
  });
  services.push(service);
  return service;
}

async function cacheFilesText(): Promise<string> {
  const directory = join(userData, 'entitlements');
  const names = await readdir(directory);
  const contents = await Promise.all(names.map((name) => readFile(join(directory, name), 'latin1')));
  return contents.join('\n');
}

beforeAll(async () => {
  signer = await makeSigner('ES256', 'entitlements-2026');
  const device = await generateKeyPair('ES256');
  jkt = await calculateJwkThumbprint(await exportJWK(device.publicKey));
});

beforeEach(async () => {
  gateway = await TestGateway.start();
  const sessionKey = await makeSigner('ES256', 'session-2026');
  gateway.jwks = { keys: [sessionKey.publicJwk, signer.publicJwk] };
  clock = new TestClock();
  userData = await mkdtemp(join(tmpdir(), 'clearance-entitlements-'));
  logs = [];
});

afterEach(async () => {
  for (const service of services.splice(0)) service.dispose();
  await gateway.stop();
});

describe('EntitlementService', () => {
  it('shows the verified document after start, announces it, and goes live on the event stream', async () => {
    await publish(1);
    const service = makeService();
    const seen: EntitlementsView[] = [];
    service.onDidChange((view) => seen.push(view));
    await service.start();
    expect(service.view).toMatchObject({ status: 'current', ver: 1, supportContact: 'it-help@lab.example' });
    expect(service.view.models.map((model) => `${model.id}:${model.status}`)).toEqual([
      'mythos-5:denied',
      'haiku-4:allowed',
      'internal-eval:hidden',
    ]);
    expect(seen.some((view) => view.ver === 1)).toBe(true);
    await until(() => service.view.live === 'connected', 'the stream to connect');
    expect(gateway.seen('/v1/entitlements')[0]?.headers.authorization).toBe('DPoP test-token');
  });

  it('checks models before a chat request: allows permitted ones and refuses denied ones with their rule', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    expect(service.checkModel('haiku-4')).toEqual({ allowed: true });
    expect(service.checkModel('mythos-5')).toMatchObject({
      allowed: false,
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      policy: 'ec-2026-06-us-persons',
    });
    expect(service.checkModel('not-in-document')).toMatchObject({ allowed: false, reason: 'NOT_ENTITLED' });
  });

  it('refuses a tampered document from the gateway and keeps the last good one', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    const good = await publish(2, { models: [{ id: 'mythos-5', name: 'Mythos 5', status: 'denied' }] });
    const [header, payload, signature] = good.split('.') as [string, string, string];
    const text = new TextDecoder().decode(base64url.decode(payload)).replace('"denied"', '"allowed"');
    gateway.document = () => ({ status: 200, body: `${header}.${base64url.encode(text)}.${signature}` });
    const view = await service.refresh();
    expect(view.ver).toBe(1);
    expect(view.lastError).toMatch(/signature does not match/);
    expect(service.checkModel('mythos-5')).toMatchObject({ allowed: false });

    const signatureBytes = base64url.decode(signature);
    signatureBytes[10] = signatureBytes[10]! ^ 0x80;
    gateway.document = () => ({ status: 200, body: `${header}.${payload}.${base64url.encode(signatureBytes)}` });
    expect((await service.refresh()).ver).toBe(1);
    expect(logs.join('\n')).toMatch(/Refused an entitlement document \(SIGNATURE\)/);
  });

  it('refuses a replayed older ver, and remembers the highest ver across sign-out and restart', async () => {
    await publish(5);
    const first = makeService();
    await first.start();
    const older = await publish(4);
    expect((await first.refresh()).lastError).toMatch(/version 4, older than version 5/);
    await first.signOut();
    first.dispose();

    gateway.document = () => ({ status: 200, body: older });
    const second = makeService();
    await second.start();
    expect(second.view.status).toBe('none');
    expect(second.view.lastError).toMatch(/replayed/);
  });

  it('keeps the document encrypted on disk and shows it after a restart while the gateway is down', async () => {
    await publish(3);
    const first = makeService();
    await first.start();
    const lastRefresh = first.view.lastRefresh;
    const files = first.cacheFiles;
    await until(() => existsSync(files.document) && existsSync(files.versions), 'the cache to be written');
    const onDisk = await cacheFilesText();
    expect(await readdir(join(userData, 'entitlements'))).toEqual(
      expect.arrayContaining([files.document, files.jwks, files.versions].map((path) => path.split(/[\\/]/).at(-1))),
    );
    for (const plain of ['Mythos', 'Haiku', 'haiku-4', 'EXPORT_CONTROL', SUB, 'entitlements-2026']) {
      expect(onDisk).not.toContain(plain);
    }
    first.dispose();
    await gateway.stop();

    const second = makeService();
    await second.start();
    expect(second.view).toMatchObject({ status: 'current', ver: 3, live: 'offline', lastRefresh });
    expect(second.view.lastError).toMatch(/Could not reach the gateway/);
    // The cached document is shown (its version, its models), but offline nothing is confirmed as available.
    expect(second.view.models.map((model) => model.id)).toContain('haiku-4');
    expect(second.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });
  });

  it('turns stale at exp by itself: every visible model denied with ENTITLEMENTS_STALE', async () => {
    const jws = await publish(1);
    const exp = JSON.parse(new TextDecoder().decode(base64url.decode(jws.split('.')[1]!))).exp as number;
    clock.offset = exp * 1000 - 400 - Date.now();
    // Polling and renewal far away: only the expiry timer can flip the view.
    const service = makeService({ timing: { pollIntervalMs: 60_000, reconnect: { initialMs: 20, maxMs: 100 } } });
    await service.start();
    expect(service.view.status).toBe('current');
    const stale = await nextChange(service, (view) => view.status === 'stale');
    expect(clock.now()).toBeGreaterThanOrEqual(exp * 1000);
    const visible = stale.models.filter((model) => model.status !== 'hidden');
    expect(visible.map((model) => model.id)).toEqual(['mythos-5', 'haiku-4']);
    for (const model of visible) {
      expect(model).toMatchObject({
        status: 'denied',
        reason: 'ENTITLEMENTS_STALE',
        title: 'Access could not be confirmed',
      });
      expect(model.message).toMatch(/since \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
      expect(model.message).toContain('it-help@lab.example');
    }
    expect(service.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });
  });

  it('refetches when the stream says entitlements changed, and announces the new version', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await until(() => service.view.live === 'connected', 'the stream to connect');
    await publish(2, { models: [{ id: 'haiku-4', name: 'Haiku 4', status: 'denied', reason: 'MODEL_SUSPENDED' }] });
    const changed = nextChange(service, (view) => view.ver === 2);
    gateway.push('entitlements.changed', { ver: 2 });
    const view = await changed;
    expect(view.models[0]).toMatchObject({ id: 'haiku-4', status: 'denied', reason: 'MODEL_SUSPENDED' });
    expect(service.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'MODEL_SUSPENDED' });
  });

  it('does not refetch for a change event about a version it already has', async () => {
    await publish(4);
    const service = makeService({ timing: { renewAtFraction: 0.99, reconnect: { initialMs: 20, maxMs: 100 } } });
    await service.start();
    await until(() => service.view.live === 'connected', 'the stream to connect');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const fetches = gateway.seen('/v1/entitlements').length;
    gateway.push('entitlements.changed', { ver: 4 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(gateway.seen('/v1/entitlements')).toHaveLength(fetches);
  });

  it('passes on session.revoked from the stream', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await until(() => service.view.live === 'connected', 'the stream to connect');
    const revoked = new Promise((resolve) => service.onDidRevokeSession(resolve));
    gateway.push('session.revoked', { reason: 'DEVICE_REVOKED', message: 'This device was removed by IT.' });
    await expect(revoked).resolves.toMatchObject({
      reason: 'DEVICE_REVOKED',
      message: 'This device was removed by IT.',
    });
  });

  it('falls back to polling when the stream drops, and reconnects with Last-Event-ID', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await until(() => service.view.live === 'connected', 'the stream to connect');
    const lastId = gateway.push('entitlements.changed', { ver: 1 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    gateway.refuseStreams = true;
    gateway.dropStreams();
    await nextChange(service, (view) => view.live === 'polling');
    const before = gateway.seen('/v1/entitlements').length;
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(gateway.seen('/v1/entitlements').length - before).toBeGreaterThanOrEqual(2);
    expect(service.view.status).toBe('current');

    gateway.refuseStreams = false;
    await nextChange(service, (view) => view.live === 'connected');
    expect(gateway.seen('/v1/events').at(-1)?.headers['last-event-id']).toBe(lastId);
    // The refetch on reconnecting (and a poll that may have been under way) end with this refresh;
    // after it, over more than three poll intervals, nothing is fetched: polling stopped.
    await service.refresh();
    const polled = gateway.seen('/v1/entitlements').length;
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(gateway.seen('/v1/entitlements')).toHaveLength(polled);
  });

  it('goes offline with the gateway, shows no model as available, keeps the document, turns stale at exp and reconnects when it is back', async () => {
    const jws = await publish(1);
    const exp = JSON.parse(new TextDecoder().decode(base64url.decode(jws.split('.')[1]!))).exp as number;
    clock.offset = exp * 1000 - 1200 - Date.now();
    const service = makeService();
    await service.start();
    await until(() => service.view.live === 'connected', 'the stream to connect');

    await gateway.stop();
    const offline = await nextChange(service, (view) => view.live === 'offline');
    expect(offline).toMatchObject({ status: 'current', ver: 1 });
    // Offline, nothing is shown as available: the banner, the picker and My access agree.
    expect(offline.models.filter((model) => model.status === 'allowed')).toEqual([]);
    expect(offline.models.find((model) => model.id === 'haiku-4')?.message).toMatch(
      /could not reach the gateway since/,
    );
    expect(service.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });

    const stale = await nextChange(service, (view) => view.status === 'stale');
    expect(stale.models[1]?.message).toMatch(/could not reach the gateway since/);
    expect(service.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });

    await publish(2);
    const back = nextChange(
      service,
      (view) => view.live === 'connected' && view.status === 'current' && view.ver === 2,
    );
    await gateway.restart();
    await back;
    expect(service.checkModel('haiku-4')).toEqual({ allowed: true });
  });

  it('refetches after a chat call was forbidden', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await publish(2);
    const changed = nextChange(service, (view) => view.ver === 2);
    service.onChatForbidden();
    await changed;
  });

  it('shows nothing and refuses every model when nobody is signed in', async () => {
    await publish(1);
    let signedIn: string | undefined = SUB;
    const service = makeService({ expectedSub: () => signedIn });
    await service.start();
    expect(service.view.status).toBe('current');
    signedIn = undefined;
    expect(service.view).toMatchObject({ status: 'none', models: [] });
    expect(service.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });
  });

  it('hides a document bound to another device key or user, even from the cache', async () => {
    await publish(1);
    const first = makeService();
    await first.start();
    first.dispose();
    await gateway.stop();
    const otherUser = makeService({ expectedSub: () => 'user-grace' });
    await otherUser.start();
    expect(otherUser.view.status).toBe('none');
    const otherDevice = makeService({ expectedJkt: () => 'another-device' });
    await otherDevice.start();
    expect(otherDevice.view.status).toBe('none');
  });

  it('forgets the cached document on sign-out', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await until(() => existsSync(service.cacheFiles.document), 'the cache to be written');
    const changed = nextChange(service, (view) => view.status === 'none');
    await service.signOut();
    await changed;
    expect(await readdir(join(userData, 'entitlements'))).not.toContain('document.bin');
  });

  it('stops every timer and stream on dispose', async () => {
    await publish(1);
    const service = makeService();
    await service.start();
    await until(() => service.view.live === 'connected', 'the stream to connect');
    gateway.dropStreams();
    await new Promise((resolve) => setTimeout(resolve, 30));
    service.dispose();
    await until(() => gateway.openStreams === 0, 'the stream to close');
    const count = gateway.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gateway.requests).toHaveLength(count);
  });
});

describe('NullEntitlementService', () => {
  it('lists no models and refuses every check', async () => {
    const none = new NullEntitlementService('it-help@lab.example');
    expect(none.view).toEqual({ status: 'none', models: [], live: 'offline', supportContact: 'it-help@lab.example' });
    expect(none.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });
    await expect(none.refresh()).resolves.toEqual(none.view);
  });
});
