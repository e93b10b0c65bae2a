import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { DeviceEnrolment, DeviceRegistry } from '../store/device-registry';
import { observeRequest } from '../observability/context';
import { TestDevice, type ProofOptions } from '../testing/device-client';
import { DpopVerifier, type DpopExpectations } from './dpop';
import { AuthError } from './errors';
import { DEFAULT_CLAIM_MAPPING, IdentityTokenVerifier, type ClaimMapping } from './identity-token';
import { loadOrCreateKey, type SigningKey } from './keys';
import { RequestAuthenticator, type AfterAuthentication, type RequestLike } from './request-auth';
import { SessionTokens, type SessionTokenContent } from './session-token';

const GATEWAY = 'https://gw.example';
const ORIGINS = [GATEWAY, 'https://gw.internal:8443'];
const IDP = 'https://idp.example';
const IDP_AUDIENCE = 'api://clearance-gateway';
const T0 = 1_800_000_000_000;

let dir: string;
let sessionKey: SigningKey;
let idpKey: { privateKey: CryptoKey; publicJwk: JWK };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'request-auth-'));
  sessionKey = await loadOrCreateKey(join(dir, 'session.jwk.json'));
  const pair = await generateKeyPair('ES256');
  idpKey = { privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid: 'idp-1' } };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every test runs on a fake wall clock (DPoP `iat`, token `exp` and the enrolment cache read it). */
function at(ms: number): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(ms);
}
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** The device registry in memory, counting lookups. */
class MemoryDevices {
  readonly enrolments = new Map<string, DeviceEnrolment>();
  readonly finds: string[] = [];

  enrol(userId: string, jkt: string, change: Partial<DeviceEnrolment> = {}): DeviceEnrolment {
    const enrolment = { userId, jkt, deviceId: `device-of-${userId}`, ...change } as DeviceEnrolment;
    this.enrolments.set(`${userId} ${jkt}`, enrolment);
    return enrolment;
  }

  revoke(userId: string, jkt: string): void {
    const enrolment = this.enrolments.get(`${userId} ${jkt}`)!;
    this.enrolments.set(`${userId} ${jkt}`, { ...enrolment, revokedAt: new Date().toISOString() });
  }

  async find(userId: string, jkt: string): Promise<DeviceEnrolment | undefined> {
    this.finds.push(`${userId} ${jkt}`);
    return this.enrolments.get(`${userId} ${jkt}`);
  }
}

interface Rig {
  readonly auth: RequestAuthenticator;
  readonly devices: MemoryDevices;
  readonly sessionTokens: SessionTokens;
  readonly dpop: DpopVerifier;
  readonly after: ReturnType<typeof vi.fn<AfterAuthentication>>;
  readonly identityTokens: string[];
}

function rig(options: { enrolmentTtlMs?: number; mapping?: ClaimMapping; after?: AfterAuthentication } = {}): Rig {
  const identityTokens: string[] = [];
  const identity = new IdentityTokenVerifier(
    {
      issuer: IDP,
      jwksUri: `${IDP}/jwks`,
      audience: IDP_AUDIENCE,
      fetch: async () => Response.json({ keys: [idpKey.publicJwk] }),
    },
    options.mapping ?? DEFAULT_CLAIM_MAPPING,
  );
  const verifyIdentity = identity.verify.bind(identity);
  vi.spyOn(identity, 'verify').mockImplementation((token) => {
    identityTokens.push(token);
    return verifyIdentity(token);
  });
  const sessionTokens = new SessionTokens(sessionKey, GATEWAY);
  const dpop = new DpopVerifier();
  const devices = new MemoryDevices();
  const after = vi.fn<AfterAuthentication>(options.after ?? (async () => {}));
  const args = [
    identity,
    sessionTokens,
    dpop,
    devices as unknown as DeviceRegistry,
    options.mapping ?? DEFAULT_CLAIM_MAPPING,
    () => ORIGINS,
    after,
  ] as const;
  const auth =
    options.enrolmentTtlMs === undefined
      ? new RequestAuthenticator(...args)
      : new RequestAuthenticator(...args, options.enrolmentTtlMs);
  return { auth, devices, sessionTokens, dpop, after, identityTokens };
}

const deviceVerdict: SessionTokenContent['device'] = {
  id: 'device-1',
  assurance: 'hardware',
  compliant: true,
  failedChecks: [],
};

function content(device: TestDevice, change: Partial<SessionTokenContent> = {}): SessionTokenContent {
  return {
    sub: 'alice',
    sid: 'session-1',
    groups: ['research'],
    cnf: { jkt: device.jkt },
    device: deviceVerdict,
    ...change,
  };
}

/** A request carrying `token` as DPoP with a fresh proof by `device` for it. */
async function dpopRequest(
  device: TestDevice,
  token: string,
  options: { method?: string; url?: string; proof?: ProofOptions; origin?: string } = {},
): Promise<RequestLike> {
  const method = options.method ?? 'GET';
  const url = options.url ?? '/v1/models';
  const proof = await device.proof(method, `${options.origin ?? GATEWAY}${url}`, {
    accessToken: token,
    ...options.proof,
  });
  return { method, url, headers: { authorization: `DPoP ${token}`, dpop: proof } };
}

async function refusal(promise: Promise<unknown>): Promise<AuthError> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(AuthError);
  return error as AuthError;
}

function expectAuthError(
  error: AuthError,
  code: AuthError['error'],
  detail: string,
  scheme: AuthError['scheme'] = 'DPoP',
): void {
  expect({ error: error.error, detail: error.detail, scheme: error.scheme, status: error.status }).toStrictEqual({
    error: code,
    detail,
    scheme,
    status: 401,
  });
}

/** An identity-provider access token signed by the test provider's key. */
async function identityToken(claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: IDP,
    aud: IDP_AUDIENCE,
    sub: 'alice',
    iat: now,
    exp: now + 600,
    name: 'Alice Doe',
    preferred_username: 'alice@example',
    groups: ['research', 'us-persons'],
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'idp-1' })
    .sign(idpKey.privateKey);
}

describe('RequestAuthenticator.sessionFromDpop', () => {
  it('accepts a gateway token with a proof by its device key, and builds the session from its claims', async () => {
    at(T0);
    const { auth, devices, dpop, after } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const verify = vi.spyOn(dpop, 'verify');
    const { token, claims } = await rig().sessionTokens.issue(
      content(device, { name: 'Alice Doe', preferred_username: 'alice@example', groups: ['research', 'us-persons'] }),
    );
    const request = await dpopRequest(device, token, { method: 'POST', url: '/v1/chat/completions?stream=1#x' });
    const result = await auth.sessionFromDpop(request);
    expect(result.claims).toStrictEqual(claims);
    expect(result.proof.jkt).toBe(device.jkt);
    expect(result.session).toStrictEqual({
      sessionId: 'session-1',
      userId: 'alice',
      jkt: device.jkt,
      identity: { name: 'Alice Doe', username: 'alice@example', groups: ['research', 'us-persons'] },
      principal: { groups: ['research', 'us-persons'], usPerson: true, verificationPending: false },
      device: deviceVerdict,
      expiresAt: claims.exp,
    });
    expect(verify).toHaveBeenCalledTimes(1);
    expect(verify.mock.calls[0]).toStrictEqual([
      request.headers.dpop,
      {
        method: 'POST',
        urls: [`${GATEWAY}/v1/chat/completions`, 'https://gw.internal:8443/v1/chat/completions'],
        accessToken: token,
        boundJkt: device.jkt,
        replayScope: 'alice',
      } satisfies DpopExpectations,
    ]);
    expect(devices.finds).toStrictEqual([`alice ${device.jkt}`]);
    expect(after.mock.calls).toStrictEqual([[request, { userId: 'alice', jkt: device.jkt }]]);
  });

  it('leaves out the name and username the token does not carry, and maps groups with the configured mapping', async () => {
    at(T0);
    const mapping = { ...DEFAULT_CLAIM_MAPPING, usPersonGroup: 'itar-ok', verificationPendingGroup: 'itar-pending' };
    const { auth, devices, sessionTokens } = rig({ mapping });
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const { token } = await sessionTokens.issue(content(device, { groups: ['us-persons', 'itar-pending'] }));
    const { session } = await auth.sessionFromDpop(await dpopRequest(device, token));
    expect(session.identity).toStrictEqual({ groups: ['us-persons', 'itar-pending'] });
    expect(session.principal).toStrictEqual({
      groups: ['us-persons', 'itar-pending'],
      usPerson: false,
      verificationPending: true,
    });
  });

  it('takes the device from device_jkt when a session key signs the proofs: enrolment, session and hook name the device key', async () => {
    at(T0);
    const { auth, devices, sessionTokens, dpop, after } = rig();
    const deviceKey = await TestDevice.create();
    const sessionKeyDevice = await TestDevice.create();
    devices.enrol('alice', deviceKey.jkt);
    const verify = vi.spyOn(dpop, 'verify');
    const { token } = await sessionTokens.issue(content(sessionKeyDevice, { device_jkt: deviceKey.jkt }));
    const request = await dpopRequest(sessionKeyDevice, token);
    const { session, proof } = await auth.sessionFromDpop(request);
    expect(proof.jkt).toBe(sessionKeyDevice.jkt);
    expect(verify.mock.calls[0]?.[1].boundJkt).toBe(sessionKeyDevice.jkt);
    expect(session.jkt).toBe(deviceKey.jkt);
    expect(devices.finds).toStrictEqual([`alice ${deviceKey.jkt}`]);
    expect(after.mock.calls).toStrictEqual([[request, { userId: 'alice', jkt: deviceKey.jkt }]]);
  });

  it('refuses a proof signed by another key than the token is bound to, before any enrolment lookup', async () => {
    at(T0);
    const { auth, devices, sessionTokens, after } = rig();
    const device = await TestDevice.create();
    const thief = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    devices.enrol('alice', thief.jkt);
    const { token } = await sessionTokens.issue(content(device));
    const error = await refusal(auth.sessionFromDpop(await dpopRequest(thief, token)));
    expectAuthError(error, 'invalid_token', 'DPoP proof key does not match the key the token is bound to (cnf.jkt)');
    expect(devices.finds).toStrictEqual([]);
    expect(after).not.toHaveBeenCalled();
  });

  it('refuses a proof for another access token (ath)', async () => {
    at(T0);
    const { auth, devices, sessionTokens, after } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const { token } = await sessionTokens.issue(content(device));
    const { token: other } = await sessionTokens.issue(content(device, { sid: 'session-2' }));
    const request = await dpopRequest(device, token, { proof: { accessToken: other } });
    const error = await refusal(auth.sessionFromDpop(request));
    expectAuthError(error, 'invalid_dpop_proof', 'DPoP proof ath does not match the access token');
    expect(after).not.toHaveBeenCalled();
  });

  it('accepts a proof for the path on any public origin, and refuses one for another path or origin', async () => {
    at(T0);
    const { auth, devices, sessionTokens } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const { token } = await sessionTokens.issue(content(device));
    await expect(
      auth.sessionFromDpop(await dpopRequest(device, token, { origin: 'https://gw.internal:8443' })),
    ).resolves.toBeDefined();
    const elsewhere = await dpopRequest(device, token, { origin: 'https://evil.example' });
    const htu = 'DPoP proof htu does not match this request URI';
    expectAuthError(await refusal(auth.sessionFromDpop(elsewhere)), 'invalid_dpop_proof', htu);
    const proof = await device.proof('GET', `${GATEWAY}/v1/admin`, { accessToken: token });
    const otherPath = { method: 'GET', url: '/v1/models', headers: { authorization: `DPoP ${token}`, dpop: proof } };
    expectAuthError(await refusal(auth.sessionFromDpop(otherPath)), 'invalid_dpop_proof', htu);
  });

  it('refuses a token whose device key is not enrolled, and caches nothing', async () => {
    at(T0);
    const { auth, devices, sessionTokens, after } = rig();
    const device = await TestDevice.create();
    const { token } = await sessionTokens.issue(content(device));
    const error = await refusal(auth.sessionFromDpop(await dpopRequest(device, token)));
    expectAuthError(error, 'invalid_token', 'The device key of this token is not enrolled');
    expect(devices.finds).toStrictEqual([`alice ${device.jkt}`]);
    expect(auth.enrolmentCacheEntries).toBe(0);
    expect(after).not.toHaveBeenCalled();
  });

  it("refuses a token whose device key is another user's enrolment", async () => {
    at(T0);
    const { auth, devices, sessionTokens } = rig();
    const device = await TestDevice.create();
    devices.enrol('bob', device.jkt);
    const { token } = await sessionTokens.issue(content(device));
    const error = await refusal(auth.sessionFromDpop(await dpopRequest(device, token)));
    expectAuthError(error, 'invalid_token', 'The device key of this token is not enrolled');
  });

  it('refuses a token whose device key was revoked, looks it up again next time, and caches nothing', async () => {
    at(T0);
    const { auth, devices, sessionTokens, after } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    devices.revoke('alice', device.jkt);
    const { token } = await sessionTokens.issue(content(device));
    for (let i = 0; i < 2; i++) {
      const error = await refusal(auth.sessionFromDpop(await dpopRequest(device, token)));
      expectAuthError(error, 'invalid_token', 'The device key of this token has been revoked');
    }
    expect(devices.finds).toHaveLength(2);
    expect(auth.enrolmentCacheEntries).toBe(0);
    expect(after).not.toHaveBeenCalled();
  });

  it('refuses an access token the gateway did not sign, before the proof is looked at', async () => {
    at(T0);
    const { auth, devices, dpop, after } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const verify = vi.spyOn(dpop, 'verify');
    const stranger = await loadOrCreateKey(join(dir, 'stranger.jwk.json'));
    const { token } = await new SessionTokens(stranger, GATEWAY).issue(content(device));
    const error = await refusal(auth.sessionFromDpop(await dpopRequest(device, token)));
    expectAuthError(error, 'invalid_token', 'Access token rejected: token kid is not the gateway session key');
    expect(verify).not.toHaveBeenCalled();
    expect(devices.finds).toStrictEqual([]);
    expect(after).not.toHaveBeenCalled();
  });

  it('authenticates a request once: the second call returns the first outcome instead of a replay refusal', async () => {
    at(T0);
    const { auth, devices, sessionTokens, dpop, after } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const verify = vi.spyOn(dpop, 'verify');
    const { token } = await sessionTokens.issue(content(device));
    const request = await dpopRequest(device, token);
    const first = auth.sessionFromDpop(request);
    const second = auth.sessionFromDpop(request);
    expect(second).toBe(first);
    await expect(second).resolves.toBe(await first);
    expect(verify).toHaveBeenCalledTimes(1);
    expect(after).toHaveBeenCalledTimes(1);
    // The same proof on another request object is a replay.
    const copy = { ...request };
    const replay = await refusal(auth.sessionFromDpop(copy));
    expectAuthError(replay, 'invalid_dpop_proof', 'DPoP proof was already used (jti replay)');
  });

  it('reuses the session built for a token on its later requests, and still runs the hook each time', async () => {
    at(T0);
    const { auth, devices, sessionTokens, after } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt, {});
    const { token } = await sessionTokens.issue(content(device, { name: 'Alice' }));
    const first = await auth.sessionFromDpop(await dpopRequest(device, token));
    const secondRequest = await dpopRequest(device, token);
    const second = await auth.sessionFromDpop(secondRequest);
    expect(second.session).toBe(first.session);
    expect(second.claims).toBe(first.claims);
    expect(second.proof.jti).not.toBe(first.proof.jti);
    expect(after).toHaveBeenCalledTimes(2);
    expect(after.mock.calls[1]).toStrictEqual([secondRequest, { userId: 'alice', jkt: device.jkt }]);
  });

  it('lets the hook refuse (a suspended user): its error is the outcome, on a new session and on a known one', async () => {
    at(T0);
    const suspended = new AuthError('invalid_token', 'suspended');
    let refuse = false;
    const { auth, devices, sessionTokens } = rig({
      after: async () => {
        if (refuse) throw suspended;
      },
    });
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const { token } = await sessionTokens.issue(content(device));
    refuse = true;
    await expect(auth.sessionFromDpop(await dpopRequest(device, token))).rejects.toBe(suspended);
    refuse = false;
    await auth.sessionFromDpop(await dpopRequest(device, token));
    refuse = true;
    await expect(auth.sessionFromDpop(await dpopRequest(device, token))).rejects.toBe(suspended);
  });

  it('times the verification as the auth phase of the request', async () => {
    at(T0);
    const { auth, devices, sessionTokens } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const { token } = await sessionTokens.issue(content(device));
    const request = await dpopRequest(device, token);
    const phases = await observeRequest('r-1', async () => {
      await auth.sessionFromDpop(request);
      const { currentRequest } = await import('../observability/context');
      return Object.keys(currentRequest()!.phases);
    });
    expect(phases).toStrictEqual(['auth']);
  });
});

describe('the Authorization header of a gateway request', () => {
  it('refuses a missing header, naming the DPoP scheme, and looks at nothing else', async () => {
    at(T0);
    const { auth, dpop, devices, after } = rig();
    const verify = vi.spyOn(dpop, 'verify');
    for (const authorization of [undefined, '']) {
      const error = await refusal(
        auth.sessionFromDpop({ method: 'GET', url: '/v1/models', headers: { authorization } }),
      );
      expectAuthError(error, 'invalid_request', 'Missing "Authorization: DPoP <token>"');
    }
    expect(verify).not.toHaveBeenCalled();
    expect(devices.finds).toStrictEqual([]);
    expect(after).not.toHaveBeenCalled();
  });

  it('refuses a header that is not "<scheme> <token68>"', async () => {
    at(T0);
    const { auth, sessionTokens } = rig();
    const device = await TestDevice.create();
    const { token } = await sessionTokens.issue(content(device));
    const verifySession = vi.spyOn(sessionTokens, 'verify');
    for (const authorization of [
      `1 DPoP ${token}`,
      `DPoP ${token} extra`,
      `DPoP ${token},`,
      `DPoP`,
      `DPoP${token}`,
      `DPoP =${token}`,
      `DPoP ${token}=a`,
      `DPoP ${token}\u00e9`,
      `D-PoP ${token}`,
    ]) {
      const error = await refusal(auth.sessionFromDpop({ method: 'GET', url: '/', headers: { authorization } }));
      expectAuthError(error, 'invalid_request', 'Malformed Authorization header');
    }
    expect(verifySession).not.toHaveBeenCalled();
  });

  it('takes every token68 character, padding, any case of the scheme, several spaces and surrounding whitespace', async () => {
    at(T0);
    const { auth, sessionTokens } = rig();
    const verifySession = vi.spyOn(sessionTokens, 'verify');
    const token68 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/';
    for (const authorization of [`DPoP ${token68}`, `dPoP ${token68}==`, `DPOP   ${token68}=`, `  DPoP ${token68}  `]) {
      // Well formed: it gets as far as the token check, which refuses it as a token.
      const error = await refusal(auth.sessionFromDpop({ method: 'GET', url: '/', headers: { authorization } }));
      expectAuthError(error, 'invalid_token', 'Access token rejected: Invalid Compact JWS');
    }
    expect(verifySession.mock.calls.map(([token]) => token)).toStrictEqual([
      token68,
      `${token68}==`,
      `${token68}=`,
      token68,
    ]);
  });

  it('refuses another scheme than DPoP', async () => {
    at(T0);
    const { auth, sessionTokens, dpop } = rig();
    const verify = vi.spyOn(dpop, 'verify');
    const verifySession = vi.spyOn(sessionTokens, 'verify');
    const error = await refusal(
      auth.sessionFromDpop({ method: 'GET', url: '/', headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } }),
    );
    expectAuthError(error, 'invalid_request', 'Use "Authorization: DPoP <access token>"');
    expect(verifySession).not.toHaveBeenCalled();
    expect(verify).not.toHaveBeenCalled();
  });

  it('refuses a DPoP-bound gateway token sent as Bearer (RFC 9449 §7.2), saying how to send it', async () => {
    at(T0);
    const { auth, devices, sessionTokens, dpop, after } = rig();
    const device = await TestDevice.create();
    devices.enrol('alice', device.jkt);
    const verify = vi.spyOn(dpop, 'verify');
    const { token } = await sessionTokens.issue(content(device));
    const request = await dpopRequest(device, token);
    const error = await refusal(
      auth.sessionFromDpop({ ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }),
    );
    expectAuthError(
      error,
      'invalid_token',
      'This access token is DPoP-bound; send it as "Authorization: DPoP" with a DPoP proof, not as Bearer',
    );
    expect(verify).not.toHaveBeenCalled();
    expect(devices.finds).toStrictEqual([]);
    expect(after).not.toHaveBeenCalled();
  });

  it('refuses any other Bearer token, saying which token the endpoint takes', async () => {
    at(T0);
    const { auth, dpop, after } = rig();
    const verify = vi.spyOn(dpop, 'verify');
    const error = await refusal(
      auth.sessionFromDpop({ method: 'GET', url: '/', headers: { authorization: `bearer ${await identityToken()}` } }),
    );
    expectAuthError(error, 'invalid_token', 'This endpoint takes a gateway access token with "Authorization: DPoP"');
    expect(verify).not.toHaveBeenCalled();
    expect(after).not.toHaveBeenCalled();
  });
});

describe('RequestAuthenticator.identityFromBearer', () => {
  it('verifies the identity-provider token and runs the hook with its user', async () => {
    at(T0);
    const { auth, after, identityTokens } = rig();
    const token = await identityToken();
    const request = { method: 'POST', url: '/v1/device/challenge', headers: { authorization: `Bearer ${token}` } };
    const result = await auth.identityFromBearer(request);
    expect(result).toStrictEqual({
      token,
      identity: {
        userId: 'alice',
        name: 'Alice Doe',
        username: 'alice@example',
        groups: ['research', 'us-persons'],
        expiresAt: T0 / 1000 + 600,
      },
    });
    expect(identityTokens).toStrictEqual([token]);
    expect(after.mock.calls).toStrictEqual([[request, { userId: 'alice' }]]);
  });

  it('refuses a token the identity provider did not sign, without running the hook', async () => {
    at(T0);
    const { auth, after } = rig();
    const { privateKey } = await generateKeyPair('ES256');
    const now = T0 / 1000;
    const forged = await new SignJWT({ iss: IDP, aud: IDP_AUDIENCE, sub: 'alice', iat: now, exp: now + 600 })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'idp-1' })
      .sign(privateKey);
    const error = await refusal(
      auth.identityFromBearer({ method: 'POST', url: '/', headers: { authorization: `Bearer ${forged}` } }),
    );
    expectAuthError(error, 'invalid_token', 'Identity token rejected: signature does not verify', 'Bearer');
    expect(after).not.toHaveBeenCalled();
  });

  it('refuses a missing header, naming the Bearer scheme', async () => {
    at(T0);
    const { auth, after, identityTokens } = rig();
    const error = await refusal(auth.identityFromBearer({ method: 'POST', url: '/', headers: {} }));
    expectAuthError(error, 'invalid_request', 'Missing "Authorization: Bearer <token>"', 'Bearer');
    expect(identityTokens).toStrictEqual([]);
    expect(after).not.toHaveBeenCalled();
  });

  it('refuses a malformed header with a Bearer challenge', async () => {
    at(T0);
    const { auth, identityTokens } = rig();
    const error = await refusal(
      auth.identityFromBearer({ method: 'POST', url: '/', headers: { authorization: 'Bearer a b' } }),
    );
    expectAuthError(error, 'invalid_request', 'Malformed Authorization header', 'Bearer');
    expect(identityTokens).toStrictEqual([]);
  });

  it('refuses another scheme (a gateway token sent as DPoP), without verifying anything', async () => {
    at(T0);
    const { auth, after, identityTokens } = rig();
    const token = await identityToken();
    const error = await refusal(
      auth.identityFromBearer({ method: 'POST', url: '/', headers: { authorization: `DPoP ${token}` } }),
    );
    expectAuthError(
      error,
      'invalid_request',
      'This endpoint takes the identity provider access token as Bearer',
      'Bearer',
    );
    expect(identityTokens).toStrictEqual([]);
    expect(after).not.toHaveBeenCalled();
  });

  it('lets the hook refuse the caller', async () => {
    at(T0);
    const suspended = new AuthError('invalid_token', 'suspended', 'Bearer');
    const { auth } = rig({ after: () => Promise.reject(suspended) });
    const request = { method: 'POST', url: '/', headers: { authorization: `Bearer ${await identityToken()}` } };
    await expect(auth.identityFromBearer(request)).rejects.toBe(suspended);
  });

  it('times the verification as the auth phase of the request', async () => {
    at(T0);
    const { auth } = rig();
    const request = { method: 'POST', url: '/', headers: { authorization: `Bearer ${await identityToken()}` } };
    const phases = await observeRequest('r-2', async () => {
      await auth.identityFromBearer(request);
      const { currentRequest } = await import('../observability/context');
      return Object.keys(currentRequest()!.phases);
    });
    expect(phases).toStrictEqual(['auth']);
  });
});

describe('targetUrls', () => {
  it('is the request path without query or fragment on each public origin', () => {
    const { auth } = rig();
    const urls = (url: string) => auth.targetUrls({ method: 'GET', url, headers: {} });
    expect(urls('/v1/models?x=1#y')).toStrictEqual([`${GATEWAY}/v1/models`, 'https://gw.internal:8443/v1/models']);
    expect(urls('/v1/models#y?x')).toStrictEqual([`${GATEWAY}/v1/models`, 'https://gw.internal:8443/v1/models']);
    expect(urls('/v1/a/b')).toStrictEqual([`${GATEWAY}/v1/a/b`, 'https://gw.internal:8443/v1/a/b']);
    expect(urls('?only=query')).toStrictEqual([GATEWAY, 'https://gw.internal:8443']);
  });
});

describe('the enrolment cache', () => {
  async function signedIn(r: Rig, userId = 'alice', device?: TestDevice) {
    const key = device ?? (await TestDevice.create());
    if (!r.devices.enrolments.has(`${userId} ${key.jkt}`)) r.devices.enrol(userId, key.jkt);
    const { token } = await r.sessionTokens.issue(content(key, { sub: userId }));
    return { device: key, send: async () => r.auth.sessionFromDpop(await dpopRequest(key, token)) };
  }

  it('reuses a lookup for the TTL (5 s by default) and looks the key up again from then on', async () => {
    at(T0);
    const r = rig();
    const { send } = await signedIn(r);
    await send();
    expect(r.auth.enrolmentCacheEntries).toBe(1);
    at(T0 + 4999);
    await send();
    expect(r.devices.finds).toHaveLength(1);
    at(T0 + 5000);
    await send();
    expect(r.devices.finds).toHaveLength(2);
    at(T0 + 9999);
    await send();
    expect(r.devices.finds).toHaveLength(2);
    at(T0 + 10_000);
    await send();
    expect(r.devices.finds).toHaveLength(3);
  });

  it('sees a revocation made elsewhere once the TTL has passed, and drops the stale entry', async () => {
    at(T0);
    const r = rig({ enrolmentTtlMs: 1000 });
    const { send, device } = await signedIn(r);
    await send();
    r.devices.revoke('alice', device.jkt);
    at(T0 + 999);
    await expect(send()).resolves.toBeDefined();
    at(T0 + 1000);
    expectAuthError(await refusal(send()), 'invalid_token', 'The device key of this token has been revoked');
    expect(r.auth.enrolmentCacheEntries).toBe(0);
  });

  it('caches nothing with a TTL of 0: every request looks the key up', async () => {
    at(T0);
    const r = rig({ enrolmentTtlMs: 0 });
    const { send } = await signedIn(r);
    await send();
    await send();
    expect(r.devices.finds).toHaveLength(2);
    expect(r.auth.enrolmentCacheEntries).toBe(0);
  });

  it('keeps one entry per user and device key', async () => {
    at(T0);
    const r = rig();
    const alice = await signedIn(r, 'alice');
    const aliceLaptop = await signedIn(r, 'alice');
    const bobOnAlicesDevice = await signedIn(r, 'bob', alice.device);
    await alice.send();
    await aliceLaptop.send();
    await bobOnAlicesDevice.send();
    expect(r.auth.enrolmentCacheEntries).toBe(3);
    expect(r.devices.finds).toStrictEqual([
      `alice ${alice.device.jkt}`,
      `alice ${aliceLaptop.device.jkt}`,
      `bob ${alice.device.jkt}`,
    ]);
  });

  it('forgetDevice drops the cached enrolment and the cached tokens of that device key only', async () => {
    at(T0);
    const r = rig();
    const alice = await signedIn(r, 'alice');
    const laptop = await signedIn(r, 'alice');
    await alice.send();
    await laptop.send();
    expect(r.sessionTokens.cacheEntries).toBe(2);
    r.devices.revoke('alice', alice.device.jkt);
    r.auth.forgetDevice('alice', alice.device.jkt);
    expect(r.auth.enrolmentCacheEntries).toBe(1);
    expect(r.sessionTokens.cacheEntries).toBe(1);
    expectAuthError(await refusal(alice.send()), 'invalid_token', 'The device key of this token has been revoked');
    await laptop.send();
    expect(r.devices.finds).toHaveLength(3);
  });

  it("forgetUser drops every cached enrolment and token of the user, and no one else's", async () => {
    at(T0);
    const r = rig();
    const users = [
      await signedIn(r, 'alice'),
      await signedIn(r, 'alice'),
      await signedIn(r, 'alice2'),
      await signedIn(r, 'bob'),
    ];
    for (const user of users) await user.send();
    expect(r.auth.enrolmentCacheEntries).toBe(4);
    r.auth.forgetUser('alice');
    expect(r.auth.enrolmentCacheEntries).toBe(2);
    expect(r.sessionTokens.cacheEntries).toBe(2);
    for (const user of users) await user.send();
    expect(r.devices.finds).toHaveLength(6);
  });

  it('is bounded: at 100,000 entries it starts over', async () => {
    at(T0);
    const r = rig();
    const lookup = (r.auth as unknown as { enrolment(userId: string, jkt: string): Promise<unknown> }).enrolment.bind(
      r.auth,
    );
    const enrolment = { deviceId: 'd' } as DeviceEnrolment;
    r.devices.find = async () => enrolment;
    for (let i = 0; i < 100_000; i++) await lookup('u', `k${i}`);
    expect(r.auth.enrolmentCacheEntries).toBe(100_000);
    await lookup('u', 'k0');
    expect(r.auth.enrolmentCacheEntries).toBe(100_000);
    await lookup('u', 'k-new');
    expect(r.auth.enrolmentCacheEntries).toBe(1);
  });
});
