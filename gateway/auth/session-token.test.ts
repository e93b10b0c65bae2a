import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { AuthError } from './errors';
import { loadOrCreateKey, type SigningKey } from './keys';
import {
  deviceThumbprint,
  SESSION_TOKEN_LIFETIME_SECONDS,
  SESSION_TOKEN_TYP,
  SessionTokens,
  type SessionTokenContent,
} from './session-token';

const ISSUER = 'https://gw.example';
const NOW = 1_800_000_000;
const JKT = 'j'.repeat(43);

let dir: string;
let key: SigningKey;
let otherKey: SigningKey;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'session-token-'));
  key = await loadOrCreateKey(join(dir, 'session.jwk.json'));
  otherKey = await loadOrCreateKey(join(dir, 'other.jwk.json'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every test runs at a fixed whole second, so the one-second boundaries are exact. */
function at(seconds: number): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(seconds * 1000);
}
afterEach(() => vi.useRealTimers());

const content = (sub = 'alice', device: Partial<SessionTokenContent> = {}): SessionTokenContent => ({
  sub,
  sid: 'session-1',
  groups: ['research'],
  cnf: { jkt: JKT },
  device: { id: 'device-1', assurance: 'hardware', compliant: true, failedChecks: [] },
  ...device,
});

/** A token signed with the gateway's key whose claims and header the test chooses. */
async function forged(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
  signer: SigningKey = key,
): Promise<string> {
  return new SignJWT({
    ...content(),
    iss: ISSUER,
    aud: ISSUER,
    iat: NOW,
    exp: NOW + 300,
    jti: 'token-1',
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: SESSION_TOKEN_TYP, kid: key.kid, ...header })
    .sign(signer.privateKey);
}

async function refusal(promise: Promise<unknown>): Promise<AuthError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AuthError);
  expect((error as AuthError).error).toBe('invalid_token');
  expect((error as AuthError).status).toBe(401);
  return error as AuthError;
}

describe('SessionTokens.issue', () => {
  it('signs an at+jwt with the session key, for the gateway itself, living 300 s', async () => {
    at(NOW);
    const { token, claims } = await new SessionTokens(key, ISSUER).issue(content());
    expect(SESSION_TOKEN_TYP).toBe('at+jwt');
    expect(SESSION_TOKEN_LIFETIME_SECONDS).toBe(300);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: key.kid });
    expect(decodeJwt(token)).toEqual(claims);
    expect(claims).toMatchObject({ ...content(), iss: ISSUER, aud: ISSUER, iat: NOW, exp: NOW + 300 });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('ends the token at notAfter when that comes sooner, never later than the lifetime', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    expect((await tokens.issue(content(), NOW + 100)).claims.exp).toBe(NOW + 100);
    expect((await tokens.issue(content(), NOW + 1000)).claims.exp).toBe(NOW + 300);
  });
});

describe('SessionTokens.verify', () => {
  it('accepts a token it issued and returns its claims', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    const { token, claims } = await tokens.issue(content());
    expect(await tokens.verify(token)).toEqual(claims);
  });

  it('refuses a token whose kid is not the session key, even signed with it', async () => {
    at(NOW);
    const error = await refusal(new SessionTokens(key, ISSUER).verify(await forged({}, { kid: otherKey.kid })));
    expect(error.detail).toBe('Access token rejected: token kid is not the gateway session key');
  });

  it('refuses a token signed by another key under the session key id', async () => {
    at(NOW);
    const error = await refusal(new SessionTokens(key, ISSUER).verify(await forged({}, {}, otherKey)));
    expect(error.detail).toBe('Access token rejected: signature does not verify');
  });

  it('refuses another algorithm than ES256', async () => {
    at(NOW);
    const { privateKey } = await generateKeyPair('ES384');
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'ES384', typ: SESSION_TOKEN_TYP, kid: key.kid })
      .sign(privateKey);
    const error = await refusal(new SessionTokens(key, ISSUER).verify(token));
    expect(error.detail).toMatch(/^Access token rejected: algorithm not allowed \(/);
  });

  it('refuses a token of another type, issuer or audience', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    expect((await refusal(tokens.verify(await forged({}, { typ: 'JWT' })))).detail).toBe(
      'Access token rejected: unexpected "typ" JWT header value (claim "typ")',
    );
    expect((await refusal(tokens.verify(await forged({ iss: 'https://other.example' })))).detail).toBe(
      'Access token rejected: unexpected "iss" claim value (claim "iss")',
    );
    expect((await refusal(tokens.verify(await forged({ aud: 'https://other.example' })))).detail).toBe(
      'Access token rejected: unexpected "aud" claim value (claim "aud")',
    );
  });

  it.each(['iss', 'aud', 'exp', 'iat', 'sub', 'jti'])('refuses a token without "%s"', async (claim) => {
    at(NOW);
    const error = await refusal(new SessionTokens(key, ISSUER).verify(await forged({ [claim]: undefined })));
    expect(error.detail).toBe(`Access token rejected: missing required "${claim}" claim (claim "${claim}")`);
  });

  it.each([
    ['an empty subject', { sub: '' }],
    ['an empty token id', { jti: '' }],
    ['an empty session id', { sid: '' }],
    ['a fractional iat', { iat: NOW + 0.5 }],
    ['a fractional exp', { exp: NOW + 300.5 }],
    ['no groups', { groups: undefined }],
    ['a short cnf.jkt', { cnf: { jkt: 'j'.repeat(42) } }],
    ['a short device_jkt', { device_jkt: 'd'.repeat(42) }],
    ['no device verdict', { device: undefined }],
    ['an unknown assurance', { device: { id: 'd', assurance: 'perfect', compliant: true, failedChecks: [] } }],
    ['an unknown failed check', { device: { id: 'd', assurance: 'software', compliant: false, failedChecks: ['x'] } }],
    ['a non-boolean compliance', { device: { id: 'd', assurance: 'software', compliant: 'yes', failedChecks: [] } }],
    ['a numeric client id', { client_id: 42 }],
    ['a numeric name', { name: 42 }],
    ['a numeric preferred_username', { preferred_username: 42 }],
  ])('refuses a validly signed token with %s, as malformed claims', async (_case, claims) => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    const error = await refusal(tokens.verify(await forged(claims)));
    expect(error.detail).toBe('Access token rejected: claims are malformed');
    expect(tokens.cacheEntries).toBe(0);
  });

  it('accepts the optional claims when well-formed', async () => {
    at(NOW);
    const claims = { client_id: 'app', name: 'Alice', preferred_username: 'alice', device_jkt: 'd'.repeat(43) };
    await expect(new SessionTokens(key, ISSUER).verify(await forged(claims))).resolves.toMatchObject(claims);
  });

  it('refuses an iat more than 5 s in the future, and accepts one at 5 s', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    const error = await refusal(tokens.verify(await forged({ iat: NOW + 6, exp: NOW + 306 })));
    expect(error.detail).toBe('Access token rejected: "iat" is in the future');
    expect(tokens.cacheEntries).toBe(0);
    await expect(tokens.verify(await forged({ iat: NOW + 5, exp: NOW + 305 }))).resolves.toMatchObject({
      iat: NOW + 5,
    });
  });

  it('refuses an expired token', async () => {
    at(NOW);
    const error = await refusal(new SessionTokens(key, ISSUER).verify(await forged({ iat: NOW - 400, exp: NOW - 5 })));
    expect(error.detail).toMatch(/^Access token rejected: token expired \(/);
  });
});

describe('SessionTokens cache of verified tokens', () => {
  it('answers a token verified before from memory, frozen, until 5 s after it expires', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    const token = await forged({ exp: NOW + 100 });
    const first = await tokens.verify(token);
    expect(Object.isFrozen(first)).toBe(true);
    expect(tokens.cacheEntries).toBe(1);
    at(NOW + 104);
    expect(await tokens.verify(token)).toBe(first);
    at(NOW + 105);
    expect((await refusal(tokens.verify(token))).detail).toMatch(/^Access token rejected: token expired \(/);
    expect(tokens.cacheEntries).toBe(0);
  });

  it('keeps no token when its size is 0', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER, 0);
    const token = await forged({});
    const first = await tokens.verify(token);
    expect(tokens.cacheEntries).toBe(0);
    expect(await tokens.verify(token)).not.toBe(first);
    expect(Object.isFrozen(first)).toBe(false);
  });

  it('drops the oldest token beyond its size', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER, 2);
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((jti) => forged({ jti })));
    const first = await tokens.verify(a!);
    const second = await tokens.verify(b!);
    await tokens.verify(c!);
    expect(tokens.cacheEntries).toBe(2);
    expect(await tokens.verify(b!)).toBe(second);
    // a was dropped: verified again (a new object), which in turn drops b, now the oldest.
    expect(await tokens.verify(a!)).not.toBe(first);
    expect(tokens.cacheEntries).toBe(2);
  });

  it('drops tokens 5 s past their expiry first when full, even a newer one, keeping the live ones', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER, 2);
    const long = await forged({ jti: 'long', exp: NOW + 300 });
    const short = await forged({ jti: 'short', exp: NOW + 10 });
    const kept = await tokens.verify(long);
    await tokens.verify(short);
    // 15 s later the short token is exactly 5 s past its expiry: swept, and the older, live one stays.
    at(NOW + 15);
    await tokens.verify(await forged({ jti: 'new', iat: NOW + 15, exp: NOW + 315 }));
    expect(tokens.cacheEntries).toBe(2);
    expect(await tokens.verify(long)).toBe(kept);
  });

  it('keeps a token not yet 5 s past its expiry when sweeping a full cache, dropping the oldest instead', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER, 2);
    const long = await forged({ jti: 'long', exp: NOW + 300 });
    const ending = await forged({ jti: 'ending', exp: NOW + 10 });
    const longClaims = await tokens.verify(long);
    const endingClaims = await tokens.verify(ending);
    // 14 s later `ending` is within the tolerance: nothing is swept, the oldest (`long`) is dropped.
    at(NOW + 14);
    await tokens.verify(await forged({ jti: 'new', iat: NOW + 14, exp: NOW + 314 }));
    expect(tokens.cacheEntries).toBe(2);
    expect(await tokens.verify(ending)).toBe(endingClaims);
    expect(await tokens.verify(long)).not.toBe(longClaims);
  });

  it('sweeps only when full: an expired token stays counted until then', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    await tokens.verify(await forged({ jti: 'short', exp: NOW + 10 }));
    at(NOW + 60);
    await tokens.verify(await forged({ jti: 'new', iat: NOW + 60, exp: NOW + 360 }));
    expect(tokens.cacheEntries).toBe(2);
  });

  it('forgets the tokens of one user on suspension, and only theirs', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    const alice = await forged({ sub: 'alice', jti: 'a' });
    const bob = await forged({ sub: 'bob', jti: 'b' });
    const aliceClaims = await tokens.verify(alice);
    const bobClaims = await tokens.verify(bob);
    tokens.forgetUser('alice');
    expect(tokens.cacheEntries).toBe(1);
    expect(await tokens.verify(bob)).toBe(bobClaims);
    expect(await tokens.verify(alice)).not.toBe(aliceClaims);
  });

  it('forgets the tokens of one device of one user on revocation, session keys included', async () => {
    at(NOW);
    const tokens = new SessionTokens(key, ISSUER);
    const device = 'D'.repeat(43);
    const viaDevice = await forged({ sub: 'alice', jti: '1', cnf: { jkt: device } });
    const viaSessionKey = await forged({ sub: 'alice', jti: '2', cnf: { jkt: 'S'.repeat(43) }, device_jkt: device });
    const otherDevice = await forged({ sub: 'alice', jti: '3', cnf: { jkt: 'O'.repeat(43) } });
    const otherUser = await forged({ sub: 'bob', jti: '4', cnf: { jkt: device } });
    const kept = [await tokens.verify(otherDevice), await tokens.verify(otherUser)];
    const dropped = [await tokens.verify(viaDevice), await tokens.verify(viaSessionKey)];
    tokens.forgetDevice('alice', device);
    expect(tokens.cacheEntries).toBe(2);
    expect(await tokens.verify(otherDevice)).toBe(kept[0]);
    expect(await tokens.verify(otherUser)).toBe(kept[1]);
    expect(await tokens.verify(viaDevice)).not.toBe(dropped[0]);
    expect(await tokens.verify(viaSessionKey)).not.toBe(dropped[1]);
  });

  it('names the device key as the device, whichever key signs the proofs', () => {
    expect(deviceThumbprint({ cnf: { jkt: 'session' }, device_jkt: 'device' })).toBe('device');
    expect(deviceThumbprint({ cnf: { jkt: 'device' } })).toBe('device');
  });
});
