import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SessionState } from '../../shared/ipc';
import { startIdentityProvider, type RunningIdentityProvider } from '../../gateway/idp/provider';
import { scriptedSignIn, type ScriptedChoice } from '../../gateway/idp/scripted-browser';
import { MemorySecretStore } from '../node/adapters';
import type { Clock, ExternalBrowser, SecretStore } from '../platform';
import type { IdentityConfig } from './config';
import { IdentityError } from './errors';
import { IdentityService, type IdentityServiceOptions } from './IdentityService';
import { TOKEN_CACHE_FILE } from './token-cache';

const AUDIENCE = 'api://clearance-gateway';

/** A secret store that remembers what it was asked to encrypt, so a test can look for it on disk. */
class RecordingSecretStore implements SecretStore {
  readonly plaintexts: string[] = [];
  private readonly inner: MemorySecretStore;

  constructor(
    key: Uint8Array = randomBytes(32),
    private readonly backendName: 'os' | 'basic_text' | 'unknown' = 'os',
  ) {
    this.inner = new MemorySecretStore(key, backendName);
  }
  isAvailable() {
    return true;
  }
  backend() {
    return this.backendName;
  }
  encrypt(plain: Uint8Array) {
    this.plaintexts.push(Buffer.from(plain).toString('utf8'));
    return this.inner.encrypt(plain);
  }
  decrypt(cipher: Uint8Array) {
    return this.inner.decrypt(cipher);
  }
}

/**
 * The "system browser" of these tests: it gets the authorize URL and, like a person would,
 * picks a persona on the provider's page (or cancels), without holding up the app.
 */
class PersonaBrowser implements ExternalBrowser {
  readonly opened: string[] = [];
  readonly flows: Promise<unknown>[] = [];
  choice: ScriptedChoice | 'ignore' = 'ignore';

  constructor(private readonly caCertPem: string) {}

  async open(url: string): Promise<void> {
    this.opened.push(url);
    const choice = this.choice;
    if (choice === 'ignore') return;
    this.flows.push(scriptedSignIn(url, { caCertPem: this.caCertPem, choice }).catch((error: unknown) => error));
  }
}

class AdjustableClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
}

interface Fixture {
  readonly service: IdentityService;
  readonly browser: PersonaBrowser;
  readonly secrets: RecordingSecretStore;
  readonly clock: AdjustableClock;
  readonly userData: string;
  readonly states: SessionState[];
}

const cleanups: Array<() => Promise<void>> = [];

async function makeFixture(
  idp: RunningIdentityProvider,
  options: {
    secrets?: RecordingSecretStore;
    userData?: string;
    config?: Partial<IdentityConfig>;
    service?: IdentityServiceOptions;
  } = {},
): Promise<Fixture> {
  const userData = options.userData ?? (await mkdtemp(join(tmpdir(), 'clearance-identity-')));
  const browser = new PersonaBrowser(idp.caCertPem);
  const secrets = options.secrets ?? new RecordingSecretStore();
  const clock = new AdjustableClock();
  const service = new IdentityService(
    { secrets, browser, clock, http: (input, init) => fetch(input, init), paths: { userData, logs: userData } },
    {
      authority: idp.issuer,
      clientId: idp.clientId,
      scopes: idp.scopes,
      protocol: 'OIDC',
      caCertPem: idp.caCertPem,
      ...options.config,
    },
    { renewInBackground: false, ...options.service },
  );
  const states: SessionState[] = [];
  service.onDidChange((state) => states.push(state));
  cleanups.push(async () => {
    await service.dispose();
    if (!options.userData) await rm(userData, { recursive: true, force: true });
  });
  return { service, browser, secrets, clock, userData, states };
}

async function signInAs(fixture: Fixture, persona: string): Promise<SessionState> {
  fixture.browser.choice = { persona };
  return fixture.service.signIn();
}

async function startProvider(options: { stateDir?: string; port?: number; accessTokenTtlSeconds?: number } = {}) {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'clearance-identity-idp-')));
  const logs: string[] = [];
  const idp = await startIdentityProvider({
    stateDir,
    gatewayAudience: AUDIENCE,
    log: (line) => logs.push(line),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.accessTokenTtlSeconds ? { accessTokenTtlSeconds: options.accessTokenTtlSeconds } : {}),
  });
  return { idp, stateDir, logs };
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function loopbackAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/favicon.ico' }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

function claimsHeader(acr: string): string {
  const claims = Buffer.from(JSON.stringify({ access_token: { acrs: { essential: true, value: acr } } })).toString(
    'base64',
  );
  return `Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="${claims}"`;
}

describe('IdentityService against the development identity provider', () => {
  let idp: RunningIdentityProvider;
  let idpDir: string;

  beforeAll(async () => {
    ({ idp, stateDir: idpDir } = await startProvider());
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  afterAll(async () => {
    await idp.close();
    await rm(idpDir, { recursive: true, force: true });
  });

  it('signs in through the system browser with PKCE and a loopback redirect, showing the persona', async () => {
    const fixture = await makeFixture(idp);
    const state = await signInAs(fixture, 'us-researcher');

    expect(state).toEqual({
      status: 'signed-in',
      account: { name: 'Avery Stone', username: 'avery@lab.example', homeAccountId: 'us-researcher' },
      tokenPersistence: 'encrypted',
    });
    expect(fixture.states.map((s) => s.status)).toEqual(['signing-in', 'signed-in']);
    const authorize = new URL(fixture.browser.opened[0] ?? '');
    expect(authorize.origin + authorize.pathname).toBe(`${idp.issuer}/auth`);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('redirect_uri')).toMatch(/^http:\/\/localhost:\d+$/);
    expect(authorize.searchParams.get('client_id')).toBe('clearance-desktop');
    expect(authorize.searchParams.get('prompt')).toBe('login');

    const claims = decodeJwt(await fixture.service.getAccessToken());
    expect(claims).toMatchObject({ aud: AUDIENCE, sub: 'us-researcher', groups: ['research', 'us-persons'] });
  });

  it('keeps the token cache encrypted on disk and restores the account from it in a new session', async () => {
    const secrets = new RecordingSecretStore();
    const first = await makeFixture(idp, { secrets });
    await signInAs(first, 'fn-researcher');
    const accessToken = await first.service.getAccessToken();
    const plain = JSON.parse(secrets.plaintexts.at(-1) ?? '{}') as {
      RefreshToken: Record<string, { secret: string }>;
      IdToken: Record<string, { secret: string }>;
    };
    const refreshToken = Object.values(plain.RefreshToken)[0]?.secret ?? '';
    const idToken = Object.values(plain.IdToken)[0]?.secret ?? '';
    expect(refreshToken.length).toBeGreaterThan(20);

    const onDisk = await readFile(join(first.userData, TOKEN_CACHE_FILE));
    const text = onDisk.toString('latin1');
    for (const secret of [accessToken, refreshToken, idToken, 'bao@lab.example', 'Bao Nguyen', 'fn-researcher']) {
      expect(text.includes(secret), secret.slice(0, 20)).toBe(false);
    }
    expect(Buffer.from(secrets.decrypt(onDisk)).toString('utf8')).toContain(refreshToken);

    const second = await makeFixture(idp, { secrets, userData: first.userData });
    const restored = await second.service.restore();
    expect(restored.status).toBe('signed-in');
    expect(restored.account?.name).toBe('Bao Nguyen');
    expect(second.browser.opened).toEqual([]);
    expect(await second.service.getAccessToken()).toBe(accessToken);
  });

  it('refuses to write tokens to disk when the secret store is basic_text, and says the sign-in is session-only', async () => {
    const fixture = await makeFixture(idp, { secrets: new RecordingSecretStore(randomBytes(32), 'basic_text') });
    expect(fixture.service.state.tokenPersistence).toBe('session-only');
    const state = await signInAs(fixture, 'pending');
    expect(state).toMatchObject({ status: 'signed-in', tokenPersistence: 'session-only' });
    expect(await fixture.service.getAccessToken()).toMatch(/^ey/);
    expect(await readdir(fixture.userData, { recursive: true })).toEqual([]);
    expect(fixture.secrets.plaintexts).toEqual([]);
  });

  it('writes the encrypted cache on basic_text when managed config allows it', async () => {
    const fixture = await makeFixture(idp, {
      secrets: new RecordingSecretStore(randomBytes(32), 'basic_text'),
      config: { allowBasicTextPersistence: true },
    });
    const state = await signInAs(fixture, 'pending');
    expect(state.tokenPersistence).toBe('encrypted');
    expect(await readdir(fixture.userData)).toEqual([TOKEN_CACHE_FILE]);
  });

  it('renews the access token silently once less than five minutes are left', async () => {
    const fixture = await makeFixture(idp);
    await signInAs(fixture, 'us-researcher');
    const first = await fixture.service.getAccessToken();
    expect(await fixture.service.getAccessToken()).toBe(first);

    const expiresAt = (decodeJwt(first).exp ?? 0) * 1000;
    fixture.clock.offsetMs = expiresAt - 4 * 60 * 1000 - Date.now();
    const renewed = await fixture.service.getAccessToken();

    expect(renewed).not.toBe(first);
    expect(decodeJwt(renewed)).toMatchObject({ sub: 'us-researcher', aud: AUDIENCE });
    expect(fixture.browser.opened).toHaveLength(1);
    expect(fixture.service.state.status).toBe('signed-in');
  });

  it('renews in the background shortly before the token expires', async () => {
    // Renewal is due at half the token's life; the wait is generous because CI machines are shared.
    const short = await startProvider({ accessTokenTtlSeconds: 6 });
    try {
      const fixture = await makeFixture(short.idp, { service: { renewInBackground: true } });
      await signInAs(fixture, 'contractor');
      const refreshes = () => short.logs.filter((line) => line === 'idp: issued tokens (refresh_token)').length;
      expect(refreshes()).toBe(0);
      await waitFor(() => refreshes() >= 1, 45_000);
      expect(fixture.browser.opened).toHaveLength(1);
    } finally {
      for (const cleanup of cleanups.splice(0)) await cleanup();
      await short.idp.close();
      await rm(short.stateDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('keeps renewing in the background when the renewal timer fires before the clock says it is due', async () => {
    // Timers run on a monotonic clock, the token's expiry on the wall clock: here the wall clock runs
    // behind the timer, so at the first firing renewal is not due yet. It must be tried again, not dropped.
    const short = await startProvider({ accessTokenTtlSeconds: 6 });
    try {
      const fixture = await makeFixture(short.idp, { service: { renewInBackground: true } });
      await signInAs(fixture, 'contractor');
      fixture.clock.offsetMs = -400;
      const refreshes = () => short.logs.filter((line) => line === 'idp: issued tokens (refresh_token)').length;
      expect(refreshes()).toBe(0);
      await waitFor(() => refreshes() >= 1, 45_000);
      expect(fixture.browser.opened).toHaveLength(1);
      expect(fixture.service.state.status).toBe('signed-in');
    } finally {
      for (const cleanup of cleanups.splice(0)) await cleanup();
      await short.idp.close();
      await rm(short.stateDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('answers a claims challenge by acquiring a token that carries the requested claims', async () => {
    const fixture = await makeFixture(idp);
    await signInAs(fixture, 'us-researcher');
    const before = await fixture.service.getAccessToken();

    const after = await fixture.service.handleClaimsChallenge(claimsHeader('c1'));

    expect(after).not.toBe(before);
    expect(decodeJwt(after).acrs).toEqual(['c1']);
    expect(await fixture.service.getAccessToken()).toBe(after);
    expect(fixture.browser.opened).toHaveLength(1);
  });

  it('sends the person back to sign-in for a claims challenge only they can satisfy, and asks for those claims then', async () => {
    const fixture = await makeFixture(idp);
    await signInAs(fixture, 'us-researcher');

    const failure = await fixture.service.handleClaimsChallenge(claimsHeader('c2')).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(IdentityError);
    expect((failure as IdentityError).code).toBe('NOT_SIGNED_IN');
    expect(fixture.service.state).toMatchObject({
      status: 'signed-out',
      lastError: expect.stringMatching(/sign in again/),
    });
    await expect(fixture.service.getAccessToken()).rejects.toMatchObject({ code: 'NOT_SIGNED_IN' });

    await signInAs(fixture, 'us-researcher');
    const claims = new URL(fixture.browser.opened[1] ?? '').searchParams.get('claims');
    expect(JSON.parse(claims ?? '{}')).toMatchObject({ access_token: { acrs: { essential: true, value: 'c2' } } });
    expect(decodeJwt(await fixture.service.getAccessToken()).acrs).toEqual(['c2']);
  });

  it('rejects a WWW-Authenticate header that is not a claims challenge', async () => {
    const fixture = await makeFixture(idp);
    await signInAs(fixture, 'us-researcher');
    await expect(fixture.service.handleClaimsChallenge('Bearer error="invalid_token"')).rejects.toMatchObject({
      code: 'SIGN_IN_FAILED',
    });
    expect(fixture.service.state.status).toBe('signed-in');
  });

  it('cancelling a sign-in closes the loopback listener and leaves the service ready to sign in', async () => {
    const fixture = await makeFixture(idp);
    const pending = fixture.service.signIn();
    await waitFor(() => fixture.browser.opened.length === 1);
    const port = Number(new URL(new URL(fixture.browser.opened[0] ?? '').searchParams.get('redirect_uri') ?? '').port);
    expect(await loopbackAccepts(port)).toBe(true);

    const state = fixture.service.cancelSignIn();

    expect(state).toEqual({ status: 'signed-out', tokenPersistence: 'encrypted' });
    await expect(pending).rejects.toMatchObject({ code: 'SIGN_IN_CANCELLED' });
    await waitFor(async () => !(await loopbackAccepts(port)));

    const signedIn = await signInAs(fixture, 'fn-researcher');
    expect(signedIn.account?.name).toBe('Bao Nguyen');
  });

  it('cancelling before the browser opens stops the sign-in without opening it', async () => {
    const fixture = await makeFixture(idp);
    const pending = fixture.service.signIn();
    fixture.service.cancelSignIn();
    await expect(pending).rejects.toMatchObject({ code: 'SIGN_IN_CANCELLED' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fixture.browser.opened).toEqual([]);
    expect(fixture.service.state.status).toBe('signed-out');
  });

  it('explains in plain words when the person cancels on the provider page', async () => {
    const fixture = await makeFixture(idp);
    fixture.browser.choice = { cancel: true };
    const failure = await fixture.service.signIn().catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'SIGN_IN_FAILED', providerCode: 'access_denied' });
    expect(fixture.service.state).toEqual({
      status: 'signed-out',
      tokenPersistence: 'encrypted',
      lastError: 'The sign-in was cancelled or refused in the browser. Choose Sign in to try again.',
    });
  });

  it('signs out, deleting the cached tokens, then signs in as another persona', async () => {
    const fixture = await makeFixture(idp);
    await signInAs(fixture, 'us-researcher');
    expect(await readdir(fixture.userData)).toEqual([TOKEN_CACHE_FILE]);

    const out = await fixture.service.signOut();

    expect(out).toEqual({ status: 'signed-out', tokenPersistence: 'encrypted' });
    expect(await readdir(fixture.userData)).toEqual([]);
    await expect(fixture.service.getAccessToken()).rejects.toMatchObject({ code: 'NOT_SIGNED_IN' });

    const state = await signInAs(fixture, 'contractor');
    expect(state.account).toMatchObject({ name: 'Dana Kim', username: 'dana@contractor.example' });
    expect(decodeJwt(await fixture.service.getAccessToken()).groups).toEqual(['contractors']);

    const later = await makeFixture(idp, { secrets: fixture.secrets, userData: fixture.userData });
    expect((await later.service.restore()).account?.name).toBe('Dana Kim');
  });

  it('switches account while signed in, keeping the previous one if the switch is cancelled', async () => {
    const fixture = await makeFixture(idp);
    await signInAs(fixture, 'us-researcher');

    fixture.browser.choice = 'ignore';
    const switching = fixture.service.signIn();
    expect(fixture.service.state).toMatchObject({ status: 'signing-in', account: { name: 'Avery Stone' } });
    await waitFor(() => fixture.browser.opened.length === 2);
    fixture.service.cancelSignIn();
    await expect(switching).rejects.toMatchObject({ code: 'SIGN_IN_CANCELLED' });
    expect(fixture.service.state).toMatchObject({ status: 'signed-in', account: { name: 'Avery Stone' } });

    const switched = await signInAs(fixture, 'pending');
    expect(switched.account?.name).toBe('Casey Ortiz');
    const cached = JSON.parse(fixture.secrets.plaintexts.at(-1) ?? '{}') as { Account: Record<string, unknown> };
    expect(Object.keys(cached.Account)).toHaveLength(1);
    expect(decodeJwt(await fixture.service.getAccessToken()).sub).toBe('pending');
  });
});

describe('IdentityService when the provider goes away', () => {
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('stays signed in and reports an unreachable provider when renewal cannot connect', async () => {
    const { idp, stateDir } = await startProvider();
    try {
      const fixture = await makeFixture(idp);
      await signInAs(fixture, 'us-researcher');
      const token = await fixture.service.getAccessToken();
      await idp.close();
      fixture.clock.offsetMs = (decodeJwt(token).exp ?? 0) * 1000 - Date.now() - 60_000;

      const failure = await fixture.service.getAccessToken().catch((e: unknown) => e);

      expect(failure).toMatchObject({ code: 'IDENTITY_PROVIDER_UNREACHABLE' });
      expect((failure as Error).message).toMatch(/could not reach the sign-in service at localhost:\d+/);
      expect(fixture.service.state.status).toBe('signed-in');

      const offline = await makeFixture(idp, { secrets: fixture.secrets, userData: fixture.userData });
      offline.clock.offsetMs = fixture.clock.offsetMs;
      expect((await offline.service.restore()).status).toBe('signed-in');
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('signs out with a clear message when the provider no longer knows the refresh token', async () => {
    const first = await startProvider();
    const port = Number(new URL(first.idp.issuer).port);
    const freshDir = await mkdtemp(join(tmpdir(), 'clearance-identity-idp-fresh-'));
    try {
      const fixture = await makeFixture(first.idp);
      await signInAs(fixture, 'fn-researcher');
      const token = await fixture.service.getAccessToken();
      await first.idp.close();
      // Same CA and keys, but no memory of the sessions: every refresh token is unknown.
      await cp(first.stateDir, freshDir, { recursive: true, filter: (source) => !source.endsWith('sessions.json') });
      const second = await startProvider({ stateDir: freshDir, port });
      try {
        fixture.clock.offsetMs = (decodeJwt(token).exp ?? 0) * 1000 - Date.now() - 60_000;
        await expect(fixture.service.getAccessToken()).rejects.toMatchObject({ code: 'NOT_SIGNED_IN' });
        expect(fixture.service.state).toEqual({
          status: 'signed-out',
          tokenPersistence: 'encrypted',
          lastError: 'Your sign-in has expired or was revoked. Sign in again to continue.',
        });
      } finally {
        await second.idp.close();
      }
    } finally {
      await rm(first.stateDir, { recursive: true, force: true });
      await rm(freshDir, { recursive: true, force: true });
    }
  });
});
