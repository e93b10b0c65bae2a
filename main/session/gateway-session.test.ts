import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PostureReportClaims, type PostureCheck, type PostureCheckId } from '../../shared/device';
import { createRecordedPostureService, noncompliantLinuxDevice } from '../device/fixtures/devices';
import { DeviceKeyError, type DeviceKey } from '../device/key';
import { signWithDeviceKey } from '../device/jws';
import { generateTestDeviceKey } from './testing';
import { GatewaySession, type GatewaySessionOptions, type GatewaySessionState } from './gateway-session';
import { GatewaySessionError } from './errors';

const IDP_TOKEN = 'idp-access-token-for-alice';
/** The identity token after a claims challenge was answered (step-up). */
const STEPPED_UP_TOKEN = 'idp-access-token-for-alice-with-mfa';
const identityTokens = new Set([`Bearer ${IDP_TOKEN}`, `Bearer ${STEPPED_UP_TOKEN}`]);
const REQUIRED: PostureCheckId[] = ['disk-encryption', 'firewall'];

/** A test clock both the client and the test gateway read, in milliseconds. */
class TestClock {
  constructor(public ms = Date.parse('2026-11-26T09:00:00Z')) {}
  now = () => this.ms;
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
}

interface TestGatewayOptions {
  /** Demand a DPoP server nonce in proofs to resource endpoints (answers 401 use_dpop_nonce). */
  readonly nonceOnResources?: boolean;
  /** Demand a DPoP server nonce at the session endpoint (answers 400 use_dpop_nonce, the token-endpoint form). */
  readonly nonceOnSession?: boolean;
  readonly sessionStatus?: { readonly status: number; readonly body: object };
  /** Answer the session request with a claims challenge (base64 claims) until the stepped-up token comes. */
  readonly requireClaims?: string;
}

/**
 * A minimal gateway that checks what the client sends the way RFC 9449 §4.3 and DESIGN.md say,
 * and records every refusal: a bug in a proof or report shows up as a rejection.
 */
class TestGateway {
  readonly rejections: string[] = [];
  readonly nonceChallenges: string[] = [];
  readonly sessions: { jkt: string; claims: PostureReportClaims; token: string }[] = [];
  readonly resourceCalls: { path: string; htu: string; jti: string }[] = [];
  challenges = 0;
  /** Tokens issued before this many seconds are refused as invalid_token (revocation). */
  revokedBefore = 0;
  revokeEverything = false;
  private readonly outstandingNonces = new Set<string>();
  private readonly seenJti = new Set<string>();
  private dpopNonce = randomBytes(16).toString('base64url');
  private signingKey!: CryptoKey;
  private verifyingKey!: CryptoKey;
  private server!: Server;
  origin = '';

  constructor(
    private readonly clock: TestClock,
    private readonly options: TestGatewayOptions = {},
  ) {}

  async start(): Promise<void> {
    const pair = await generateKeyPair('ES256');
    this.signingKey = pair.privateKey;
    this.verifyingKey = pair.publicKey;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.reply(res, 500, { title: String(error) }));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  rotateNonce(): void {
    this.dpopNonce = randomBytes(16).toString('base64url');
  }

  private nowSeconds() {
    return Math.floor(this.clock.now() / 1000);
  }

  private reply(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) {
    res.writeHead(status, {
      'content-type': status >= 400 ? 'application/problem+json' : 'application/json',
      ...headers,
    });
    res.end(JSON.stringify(body));
  }

  private reject(res: ServerResponse, error: string, detail: string, status = 401) {
    this.rejections.push(`${error}: ${detail}`);
    this.reply(
      res,
      status,
      { type: 'about:blank', title: 'Unauthorized', status, detail, error },
      {
        'www-authenticate': `DPoP error="${error}", error_description="${detail}"`,
      },
    );
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  }

  /** RFC 9449 §4.3 checks 1–12; returns the proof key's thumbprint or a reason. */
  private async verifyProof(
    req: IncomingMessage,
    expected: { accessToken?: string; requireNonce: boolean },
  ): Promise<{ jkt: string; jwk: JWK } | { error: string; detail: string }> {
    const header = req.headers.dpop;
    if (typeof header !== 'string' || header.includes(','))
      return { error: 'invalid_dpop_proof', detail: 'not exactly one DPoP header' };
    let protectedHeader;
    try {
      protectedHeader = decodeProtectedHeader(header);
    } catch {
      return { error: 'invalid_dpop_proof', detail: 'not a JWT' };
    }
    if (protectedHeader.typ !== 'dpop+jwt')
      return { error: 'invalid_dpop_proof', detail: `typ ${protectedHeader.typ}` };
    if (protectedHeader.alg !== 'ES256') return { error: 'invalid_dpop_proof', detail: `alg ${protectedHeader.alg}` };
    const jwk = protectedHeader.jwk;
    if (!jwk || 'd' in jwk) return { error: 'invalid_dpop_proof', detail: 'jwk missing or private' };
    let payload;
    try {
      ({ payload } = await jwtVerify(header, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256'],
        currentDate: new Date(this.clock.now()),
      }));
    } catch (error) {
      return { error: 'invalid_dpop_proof', detail: `signature: ${String(error)}` };
    }
    const { jti, htm, htu, iat, ath, nonce } = payload as Record<string, unknown>;
    if (typeof jti !== 'string' || jti.length < 16) return { error: 'invalid_dpop_proof', detail: 'jti' };
    if (htm !== req.method) return { error: 'invalid_dpop_proof', detail: `htm ${String(htm)} != ${req.method}` };
    const target = `${this.origin}${(req.url ?? '/').split('?')[0]}`;
    if (htu !== target) return { error: 'invalid_dpop_proof', detail: `htu ${String(htu)} != ${target}` };
    if (typeof iat !== 'number' || Math.abs(iat - this.nowSeconds()) > 60)
      return { error: 'invalid_dpop_proof', detail: `iat ${String(iat)}` };
    if (expected.accessToken !== undefined) {
      const want = createHash('sha256').update(expected.accessToken).digest('base64url');
      if (ath !== want) return { error: 'invalid_dpop_proof', detail: 'ath does not match the access token' };
    } else if (ath !== undefined) {
      return { error: 'invalid_dpop_proof', detail: 'ath without an access token' };
    }
    if (this.seenJti.has(jti)) return { error: 'invalid_dpop_proof', detail: 'jti replayed' };
    this.seenJti.add(jti);
    if (expected.requireNonce && nonce !== this.dpopNonce) return { error: 'use_dpop_nonce', detail: 'nonce required' };
    return { jkt: await calculateJwkThumbprint(jwk, 'sha256'), jwk };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', this.origin).pathname;
    if (req.method === 'POST' && path === '/v1/device/challenge') {
      if (!identityTokens.has(req.headers.authorization ?? ''))
        return this.reject(res, 'invalid_token', 'bad identity token');
      this.challenges++;
      const nonce = randomBytes(32).toString('base64url');
      this.outstandingNonces.add(nonce);
      return this.reply(res, 200, { nonce, expires_in: 120 });
    }
    if (req.method === 'POST' && path === '/v1/session') return this.session(req, res);
    if (path.startsWith('/v1/')) return this.resource(req, res, path);
    return this.reply(res, 404, { title: 'Not found' });
  }

  private async session(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!identityTokens.has(req.headers.authorization ?? ''))
      return this.reject(res, 'invalid_token', 'bad identity token');
    if (this.options.requireClaims && req.headers.authorization !== `Bearer ${STEPPED_UP_TOKEN}`) {
      this.rejections.push('insufficient_claims');
      res.writeHead(401, {
        'content-type': 'application/problem+json',
        'www-authenticate': `Bearer error="insufficient_claims", claims="${this.options.requireClaims}"`,
      });
      res.end(
        JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401, error: 'insufficient_claims' }),
      );
      return;
    }
    const proof = await this.verifyProof(req, { requireNonce: this.options.nonceOnSession ?? false });
    if ('error' in proof) {
      if (proof.error === 'use_dpop_nonce') {
        this.nonceChallenges.push('session');
        res.writeHead(400, { 'content-type': 'application/json', 'dpop-nonce': this.dpopNonce });
        res.end(
          JSON.stringify({
            error: 'use_dpop_nonce',
            error_description: 'Authorization server requires nonce in DPoP proof',
          }),
        );
        return;
      }
      return this.reject(res, proof.error, proof.detail);
    }
    const { posture } = (await this.body(req)) as { posture?: unknown };
    if (typeof posture !== 'string') return this.reject(res, 'invalid_request', 'no posture', 400);
    const header = decodeProtectedHeader(posture);
    if (header.typ !== 'posture+jwt' || header.alg !== 'ES256' || !header.jwk) {
      return this.reject(res, 'invalid_request', 'posture header', 400);
    }
    if ((await calculateJwkThumbprint(header.jwk, 'sha256')) !== proof.jkt) {
      return this.reject(res, 'invalid_request', 'posture signed by another key than the proof', 400);
    }
    let claims: PostureReportClaims;
    try {
      const { payload } = await jwtVerify(posture, EmbeddedJWK, { typ: 'posture+jwt', algorithms: ['ES256'] });
      claims = PostureReportClaims.strict().parse(payload);
    } catch (error) {
      return this.reject(res, 'invalid_request', `posture: ${String(error)}`, 400);
    }
    if (!this.outstandingNonces.delete(claims.nonce))
      return this.reject(res, 'invalid_request', 'unknown or reused nonce', 400);
    if (Math.abs(claims.iat - this.nowSeconds()) > 60) return this.reject(res, 'invalid_request', 'posture iat', 400);
    if (claims.deviceId !== proof.jkt)
      return this.reject(res, 'invalid_request', 'deviceId is not the key thumbprint', 400);
    if (this.options.sessionStatus) {
      return this.reply(res, this.options.sessionStatus.status, this.options.sessionStatus.body);
    }
    const iat = this.nowSeconds();
    const token = await new SignJWT({ cnf: { jkt: proof.jkt } })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(this.origin)
      .setSubject('alice')
      .setAudience(this.origin)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 300)
      .setJti(randomBytes(8).toString('hex'))
      .sign(this.signingKey);
    this.sessions.push({ jkt: proof.jkt, claims, token });
    const failedChecks = REQUIRED.filter((id) => claims.checks.find((c) => c.id === id)?.status !== 'pass');
    return this.reply(res, 200, {
      access_token: token,
      token_type: 'DPoP',
      expires_in: 300,
      device: {
        id: claims.deviceId,
        assurance: claims.assurance,
        compliant: failedChecks.length === 0,
        failedChecks,
        checks: claims.checks,
      },
    });
  }

  private async resource(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('DPoP ')) return this.reject(res, 'invalid_token', 'scheme must be DPoP');
    const token = auth.slice(5);
    let cnf: { jkt?: string } | undefined;
    let iat: number;
    try {
      const { payload } = await jwtVerify(token, this.verifyingKey, {
        typ: 'at+jwt',
        currentDate: new Date(this.clock.now()),
      });
      cnf = payload.cnf as { jkt?: string };
      iat = payload.iat ?? 0;
    } catch (error) {
      return this.reject(res, 'invalid_token', `token: ${String(error)}`);
    }
    if (this.revokeEverything || iat < this.revokedBefore) return this.reject(res, 'invalid_token', 'revoked');
    const proof = await this.verifyProof(req, {
      accessToken: token,
      requireNonce: this.options.nonceOnResources ?? false,
    });
    if ('error' in proof) {
      if (proof.error === 'use_dpop_nonce') {
        this.nonceChallenges.push(path);
        res.writeHead(401, {
          'www-authenticate':
            'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"',
          'dpop-nonce': this.dpopNonce,
        });
        res.end();
        return;
      }
      return this.reject(res, proof.error, proof.detail);
    }
    if (proof.jkt !== cnf?.jkt)
      return this.reject(res, 'invalid_token', 'proof key is not the key the token is bound to');
    const { jti, htu } = JSON.parse(Buffer.from(String(req.headers.dpop).split('.')[1]!, 'base64url').toString()) as {
      jti: string;
      htu: string;
    };
    this.resourceCalls.push({ path: req.url ?? '', htu, jti });
    return this.reply(res, 200, { ok: true, path: req.url });
  }
}

const passingChecks: PostureCheck[] = [
  { id: 'disk-encryption', status: 'pass', detail: 'LUKS', remediation: '' },
  { id: 'firewall', status: 'pass', detail: 'ufw active', remediation: '' },
];

let clock: TestClock;
let gateway: TestGateway;
let deviceKey: DeviceKey;

async function startGateway(options: TestGatewayOptions = {}) {
  gateway = new TestGateway(clock, options);
  await gateway.start();
}

function session(overrides: Partial<GatewaySessionOptions> = {}) {
  return new GatewaySession({
    gatewayUrl: gateway.origin,
    http: (input, init) => fetch(input, init),
    clock,
    deviceKey,
    posture: async () => passingChecks,
    getIdpAccessToken: async () => IDP_TOKEN,
    appVersion: '0.1.0',
    platform: 'linux',
    ...overrides,
  });
}

beforeEach(async () => {
  clock = new TestClock();
  deviceKey = await generateTestDeviceKey();
});

afterEach(async () => {
  await gateway?.stop();
});

describe('GatewaySession attestation', () => {
  it('attests with a challenge nonce and a posture report signed by the device key, and gets a key-bound session', async () => {
    await startGateway();
    const states: GatewaySessionState[] = [];
    const s = session();
    s.onDidChange((state) => states.push(state));
    const state = await s.ensureSession();
    expect(gateway.rejections).toEqual([]);
    expect(gateway.challenges).toBe(1);
    expect(gateway.sessions).toHaveLength(1);
    const recorded = gateway.sessions[0]!;
    expect(recorded.jkt).toBe(deviceKey.thumbprint);
    expect(Object.keys(recorded.claims).sort()).toEqual(Object.keys(PostureReportClaims.shape).sort());
    expect(recorded.claims).toMatchObject({
      deviceId: deviceKey.thumbprint,
      assurance: 'software',
      platform: 'linux',
      appVersion: '0.1.0',
      checks: passingChecks,
    });
    expect(state).toMatchObject({
      status: 'active',
      deviceVerdict: { compliant: true, failedChecks: [] },
      expiresAt: clock.ms + 300_000,
    });
    expect(s.deviceVerdict?.id).toBe(deviceKey.thumbprint);
    expect(states.map((x) => x.status)).toEqual(['active']);
  });

  it('reports a non-compliant device honestly and exposes the gateway verdict', async () => {
    await startGateway();
    const posture = createRecordedPostureService(noncompliantLinuxDevice);
    const s = session({ posture: () => posture.check() });
    await s.ensureSession();
    expect(gateway.rejections).toEqual([]);
    expect(s.deviceVerdict).toMatchObject({ compliant: false, failedChecks: ['disk-encryption', 'firewall'] });
  });

  it('re-challenges and retries once when the session endpoint asks for a DPoP nonce', async () => {
    await startGateway({ nonceOnSession: true });
    const s = session();
    await s.ensureSession();
    expect(gateway.nonceChallenges).toEqual(['session']);
    expect(gateway.sessions).toHaveLength(1);
    expect(gateway.challenges).toBe(2);
    expect(gateway.rejections).toEqual([]);
  });

  it('shares one attestation between concurrent callers', async () => {
    await startGateway();
    const s = session();
    await Promise.all([s.fetch('/v1/models'), s.fetch('/v1/entitlements'), s.ensureSession()]);
    expect(gateway.sessions).toHaveLength(1);
    expect(gateway.resourceCalls).toHaveLength(2);
  });
});

describe('GatewaySession claims challenges', () => {
  it('answers a 401 insufficient_claims by re-acquiring the identity token with the claims, once', async () => {
    const claims = Buffer.from(JSON.stringify({ access_token: { acrs: { essential: true, value: 'c1' } } })).toString(
      'base64',
    );
    await startGateway({ requireClaims: claims });
    const challenges: string[] = [];
    const s = session({
      onClaimsChallenge: async (header) => {
        challenges.push(header);
        return STEPPED_UP_TOKEN;
      },
    });
    const state = await s.ensureSession();
    expect(state.status).toBe('active');
    expect(challenges).toHaveLength(1);
    expect(challenges[0]).toContain(`claims="${claims}"`);
    expect(gateway.rejections).toEqual(['insufficient_claims']);
  });

  it('gives up with a sign-in error when no claims handler is given', async () => {
    await startGateway({ requireClaims: 'e30=' });
    await expect(session().ensureSession()).rejects.toMatchObject({ code: 'NOT_SIGNED_IN' });
  });
});

describe('GatewaySession.fetch', () => {
  it('sends Authorization: DPoP and a fresh proof whose htu has no query and whose ath hashes the token', async () => {
    await startGateway();
    const s = session();
    const first = await s.fetch('/v1/models?limit=5#top');
    const { fetch: gatewayFetch } = s; // handed to other services as a plain function
    const second = await gatewayFetch(`${gateway.origin}/v1/events`, { headers: { 'Last-Event-ID': '41' } });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(gateway.rejections).toEqual([]);
    expect(gateway.resourceCalls.map((c) => c.path)).toEqual(['/v1/models?limit=5', '/v1/events']);
    expect(gateway.resourceCalls.map((c) => c.htu)).toEqual([
      `${gateway.origin}/v1/models`,
      `${gateway.origin}/v1/events`,
    ]);
    expect(new Set(gateway.resourceCalls.map((c) => c.jti)).size).toBe(2);
  });

  it('signs the method of the request (htm)', async () => {
    await startGateway();
    const response = await session().fetch('/v1/chat/completions', {
      method: 'post',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(200);
    expect(gateway.rejections).toEqual([]);
  });

  it('retries once with the server nonce after use_dpop_nonce, then keeps using it', async () => {
    await startGateway({ nonceOnResources: true });
    const s = session();
    expect((await s.fetch('/v1/models')).status).toBe(200);
    expect((await s.fetch('/v1/entitlements')).status).toBe(200);
    expect(gateway.nonceChallenges).toEqual(['/v1/models']);
    expect(gateway.resourceCalls).toHaveLength(2);
    expect(gateway.rejections).toEqual([]);
  });

  it('picks up a rotated nonce with one more retry', async () => {
    await startGateway({ nonceOnResources: true });
    const s = session();
    await s.fetch('/v1/models');
    gateway.rotateNonce();
    expect((await s.fetch('/v1/models')).status).toBe(200);
    expect(gateway.nonceChallenges).toEqual(['/v1/models', '/v1/models']);
  });

  it('renews the session when less than a minute is left, and not before', async () => {
    await startGateway();
    const s = session();
    await s.fetch('/v1/models');
    clock.advance(235);
    await s.fetch('/v1/models');
    expect(gateway.sessions).toHaveLength(1);
    clock.advance(10);
    const response = await s.fetch('/v1/models');
    expect(response.status).toBe(200);
    expect(gateway.sessions).toHaveLength(2);
    expect(gateway.challenges).toBe(2);
    expect(s.state.expiresAt).toBe(clock.ms + 300_000);
    expect(gateway.rejections).toEqual([]);
  });

  it('attests again after the token has expired while idle', async () => {
    await startGateway();
    const s = session();
    await s.fetch('/v1/models');
    clock.advance(3600);
    expect((await s.fetch('/v1/models')).status).toBe(200);
    expect(gateway.sessions).toHaveLength(2);
    expect(gateway.rejections).toEqual([]);
  });

  it('keeps using a still-valid token when renewal finds the gateway unreachable', async () => {
    await startGateway();
    let offline = false;
    const s = session({
      http: (input, init) =>
        offline && String(input).includes('/v1/device/challenge')
          ? Promise.reject(new TypeError('fetch failed'))
          : fetch(input, init),
      log: () => undefined,
    });
    await s.fetch('/v1/models');
    clock.advance(250);
    offline = true;
    expect((await s.fetch('/v1/models')).status).toBe(200);
    expect(gateway.sessions).toHaveLength(1);
  });

  it('re-attests once on invalid_token and retries the call', async () => {
    await startGateway();
    const s = session();
    await s.fetch('/v1/models');
    gateway.revokedBefore = Math.floor(clock.ms / 1000) + 1;
    clock.advance(2);
    const response = await s.fetch('/v1/models');
    expect(response.status).toBe(200);
    expect(gateway.sessions).toHaveLength(2);
    expect(gateway.rejections).toEqual(['invalid_token: revoked']);
  });

  it('gives the 401 back after one re-attestation when the gateway keeps refusing', async () => {
    await startGateway();
    const s = session();
    await s.fetch('/v1/models');
    gateway.revokeEverything = true;
    const response = await s.fetch('/v1/models');
    expect(response.status).toBe(401);
    expect(gateway.sessions).toHaveLength(2);
  });

  it('refuses to send the session to another origin', async () => {
    await startGateway();
    const error = await session()
      .fetch('http://127.0.0.1:1/v1/models')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewaySessionError);
    expect(gateway.challenges).toBe(0);
  });

  it('drop() forgets the session but keeps the device key', async () => {
    await startGateway();
    const s = session();
    const states: string[] = [];
    s.onDidChange((state) => states.push(state.status));
    await s.fetch('/v1/models');
    s.drop();
    expect(s.deviceVerdict).toBeUndefined();
    expect(s.state).toEqual({ status: 'none' });
    await s.fetch('/v1/models');
    expect(gateway.sessions.map((x) => x.jkt)).toEqual([deviceKey.thumbprint, deviceKey.thumbprint]);
    expect(states).toEqual(['active', 'none', 'active']);
  });

  it('does not keep a session that finished attesting after sign-out', async () => {
    await startGateway();
    const s = session();
    const pending = s.ensureSession();
    s.drop();
    await expect(pending).rejects.toMatchObject({ code: 'NOT_SIGNED_IN' });
    expect(s.state.status).toBe('none');
  });
});

describe('the test gateway is a real check', () => {
  it('refuses the session token presented with a proof from another key', async () => {
    await startGateway();
    const s = session();
    await s.ensureSession();
    const token = gateway.sessions[0]!.token;
    const thief = await generateTestDeviceKey();
    const proof = await signWithDeviceKey(thief, 'dpop+jwt', {
      jti: randomBytes(16).toString('hex'),
      htm: 'GET',
      htu: `${gateway.origin}/v1/models`,
      iat: Math.floor(clock.ms / 1000),
      ath: createHash('sha256').update(token).digest('base64url'),
    });
    const response = await fetch(`${gateway.origin}/v1/models`, {
      headers: { Authorization: `DPoP ${token}`, DPoP: proof },
    });
    expect(response.status).toBe(401);
    expect(gateway.rejections).toEqual(['invalid_token: proof key is not the key the token is bound to']);
  });

  it('refuses a replayed proof and one whose htu keeps the query', async () => {
    await startGateway();
    const s = session();
    await s.ensureSession();
    const token = gateway.sessions[0]!.token;
    const proof = await s.createDpopProof('GET', `${gateway.origin}/v1/models`, token);
    const headers = { Authorization: `DPoP ${token}`, DPoP: proof };
    expect((await fetch(`${gateway.origin}/v1/models`, { headers })).status).toBe(200);
    expect((await fetch(`${gateway.origin}/v1/models`, { headers })).status).toBe(401);
    const withQuery = await signWithDeviceKey(deviceKey, 'dpop+jwt', {
      jti: randomBytes(16).toString('hex'),
      htm: 'GET',
      htu: `${gateway.origin}/v1/models?x=1`,
      iat: Math.floor(clock.ms / 1000),
      ath: createHash('sha256').update(token).digest('base64url'),
    });
    expect(
      (await fetch(`${gateway.origin}/v1/models?x=1`, { headers: { Authorization: `DPoP ${token}`, DPoP: withQuery } }))
        .status,
    ).toBe(401);
    expect(gateway.rejections).toEqual([
      'invalid_dpop_proof: jti replayed',
      expect.stringContaining('invalid_dpop_proof: htu'),
    ]);
  });
});

describe('GatewaySession errors', () => {
  it('says the gateway is unreachable, naming it', async () => {
    const s = new GatewaySession({
      gatewayUrl: 'http://127.0.0.1:9',
      http: (input, init) => fetch(input, init),
      clock,
      deviceKey,
      posture: async () => passingChecks,
      getIdpAccessToken: async () => IDP_TOKEN,
      appVersion: '0.1.0',
      platform: 'linux',
    });
    const error = (await s.fetch('/v1/models').catch((e: unknown) => e)) as GatewaySessionError;
    expect(error).toBeInstanceOf(GatewaySessionError);
    expect(error.code).toBe('GATEWAY_UNAVAILABLE');
    expect(error.message).toContain('http://127.0.0.1:9');
    expect(error.message).toMatch(/network connection or VPN/);
  });

  it('asks the person to sign in when there is no identity token', async () => {
    await startGateway();
    const s = session({ getIdpAccessToken: () => Promise.reject(new Error('no account')) });
    await expect(s.ensureSession()).rejects.toMatchObject({
      code: 'NOT_SIGNED_IN',
      message: expect.stringContaining('Sign in'),
    });
    expect(gateway.challenges).toBe(0);
  });

  it('asks the person to sign in again when the gateway refuses the identity token', async () => {
    await startGateway();
    const s = session({ getIdpAccessToken: async () => 'expired-token' });
    await expect(s.ensureSession()).rejects.toMatchObject({
      code: 'NOT_SIGNED_IN',
      message: expect.stringContaining('Sign in again'),
    });
  });

  it('reports a device the gateway refuses with its reason and words', async () => {
    await startGateway({
      sessionStatus: {
        status: 403,
        body: {
          type: 'https://clearance.example/problems/device',
          title: 'Device not compliant',
          status: 403,
          reason: 'DEVICE_NOT_COMPLIANT',
          message: 'This device has been reported lost. Contact IT.',
        },
      },
    });
    const error = (await session()
      .ensureSession()
      .catch((e: unknown) => e)) as GatewaySessionError;
    expect(error.toIpcError()).toEqual({
      code: 'DEVICE_BLOCKED',
      message: 'The gateway refused this device: This device has been reported lost. Contact IT.',
      reason: 'DEVICE_NOT_COMPLIANT',
    });
  });

  it('passes on the key store’s words when the device key cannot be protected', async () => {
    await startGateway();
    const s = session({
      deviceKey: () => Promise.reject(new DeviceKeyError('secret-store-unavailable', 'Install a keyring.')),
    });
    await expect(s.ensureSession()).rejects.toMatchObject({ code: 'DEVICE_BLOCKED', message: 'Install a keyring.' });
  });

  it('says a gateway error status is temporary', async () => {
    await startGateway({
      sessionStatus: { status: 503, body: { type: 'about:blank', title: 'Upstream down', status: 503 } },
    });
    await expect(session().ensureSession()).rejects.toMatchObject({
      code: 'GATEWAY_UNAVAILABLE',
      message: expect.stringContaining('503'),
    });
  });

  it('rejects a gateway URL that is not http(s)', () => {
    expect(() => session({ gatewayUrl: 'ftp://gw.example' })).toThrow(GatewaySessionError);
  });
});
