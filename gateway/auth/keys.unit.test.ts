import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import { GatewayKeys, loadOrCreateKey } from './keys';

/** `existsSync` answers falsely "absent" for these paths: another process creates them in between. */
const racing = vi.hoisted(() => new Set<string>());
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return { ...fs, existsSync: (path: string) => !racing.has(path) && fs.existsSync(path) };
});

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'gateway-keys-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => racing.clear());

let counter = 0;
const fresh = (): string => join(root, `case-${++counter}`);
const mode = (path: string): number => statSync(path).mode & 0o777;

async function p256Jwk(): Promise<JWK> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  return exportJWK(pair.privateKey);
}

describe('loadOrCreateKey', () => {
  it('creates a P-256 private JWK file, mode 0600, whose kid is the RFC 7638 thumbprint', async () => {
    const path = join(root, `new-${++counter}.jwk.json`);
    const key = await loadOrCreateKey(path);
    expect(mode(path)).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    const stored = JSON.parse(text) as JWK;
    expect(text).toBe(`${JSON.stringify(stored, null, 2)}\n`);
    expect(stored).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(typeof stored.d).toBe('string');
    const publicPart = { kty: 'EC', crv: 'P-256', x: stored.x, y: stored.y };
    const kid = await calculateJwkThumbprint(publicPart, 'sha256');
    expect(key.kid).toBe(kid);
    expect(key.alg).toBe('ES256');
    expect(key.publicJwk).toStrictEqual({ ...publicPart, kid, alg: 'ES256', use: 'sig' });
    expect(key.privateKey.type).toBe('private');
    expect(key.publicKey.type).toBe('public');
    // The pair belongs together: the private key signs what the public key verifies.
    const jws = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256' }).sign(key.privateKey);
    await expect(jwtVerify(jws, key.publicKey)).resolves.toMatchObject({ payload: { sub: 'x' } });
  });

  it('loads the key it created, unchanged, on the next start', async () => {
    const path = join(root, `reload-${++counter}.jwk.json`);
    const first = await loadOrCreateKey(path);
    const text = readFileSync(path, 'utf8');
    const second = await loadOrCreateKey(path);
    expect(second.kid).toBe(first.kid);
    expect(second.publicJwk).toStrictEqual(first.publicJwk);
    expect(readFileSync(path, 'utf8')).toBe(text);
    const jws = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).sign(second.privateKey);
    await expect(jwtVerify(jws, first.publicKey)).resolves.toBeDefined();
  });

  it('loads an existing key file as it is (the kid follows from its public part)', async () => {
    const jwk = await p256Jwk();
    const path = join(root, `existing-${++counter}.jwk.json`);
    writeFileSync(path, JSON.stringify(jwk));
    const key = await loadOrCreateKey(path);
    const { d: _d, ...publicPart } = jwk;
    expect(key.kid).toBe(await calculateJwkThumbprint(publicPart));
    expect(key.publicJwk).toStrictEqual({
      kty: 'EC',
      crv: 'P-256',
      x: jwk.x,
      y: jwk.y,
      kid: key.kid,
      alg: 'ES256',
      use: 'sig',
    });
    expect(key.publicJwk).not.toHaveProperty('d');
  });

  it('never overwrites a key file another process created after the existence check', async () => {
    const path = join(root, `race-${++counter}.jwk.json`);
    const theirs = `${JSON.stringify(await p256Jwk())}\n`;
    writeFileSync(path, theirs);
    racing.add(path);
    await expect(loadOrCreateKey(path)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(path, 'utf8')).toBe(theirs);
  });

  it('refuses an unreadable key file, naming it and keeping the parse error as the cause', async () => {
    const path = join(root, `broken-${++counter}.jwk.json`);
    writeFileSync(path, '{ not json');
    let caught: unknown;
    await loadOrCreateKey(path).catch((error: unknown) => (caught = error));
    expect(caught).toBeInstanceOf(Error);
    const cause = (caught as Error).cause;
    expect(cause).toBeInstanceOf(SyntaxError);
    expect((caught as Error).message).toBe(
      `Signing key ${path} is unreadable (${(cause as Error).message}); remove it to make a new one`,
    );
    expect(readFileSync(path, 'utf8')).toBe('{ not json');
  });

  const notP256 = `is not a P-256 private key; remove it to make a new one`;

  it('refuses a key file that is not an EC key', async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const path = join(root, `rsa-${++counter}.jwk.json`);
    writeFileSync(path, JSON.stringify(await exportJWK(pair.privateKey)));
    await expect(loadOrCreateKey(path)).rejects.toThrow(new Error(`Signing key ${path} ${notP256}`));
  });

  it('refuses a key file that names the P-256 curve but is not an EC key', async () => {
    const path = join(root, `okp-${++counter}.jwk.json`);
    writeFileSync(path, JSON.stringify({ ...(await p256Jwk()), kty: 'OKP' }));
    await expect(loadOrCreateKey(path)).rejects.toThrow(new Error(`Signing key ${path} ${notP256}`));
  });

  it('refuses an EC key file on another curve', async () => {
    const pair = await generateKeyPair('ES384', { extractable: true });
    const path = join(root, `p384-${++counter}.jwk.json`);
    writeFileSync(path, JSON.stringify(await exportJWK(pair.privateKey)));
    await expect(loadOrCreateKey(path)).rejects.toThrow(new Error(`Signing key ${path} ${notP256}`));
  });

  it('refuses a P-256 public key (no "d"): the gateway could not sign with it', async () => {
    const { d: _d, ...publicOnly } = await p256Jwk();
    const path = join(root, `public-${++counter}.jwk.json`);
    writeFileSync(path, JSON.stringify(publicOnly));
    await expect(loadOrCreateKey(path)).rejects.toThrow(new Error(`Signing key ${path} ${notP256}`));
  });

  it('refuses an empty "d" as well', async () => {
    const path = join(root, `empty-d-${++counter}.jwk.json`);
    writeFileSync(path, JSON.stringify({ ...(await p256Jwk()), d: '' }));
    await expect(loadOrCreateKey(path)).rejects.toThrow(new Error(`Signing key ${path} ${notP256}`));
  });
});

describe('GatewayKeys', () => {
  it('creates the key folder (mode 0700, parents too) with a session key and a different entitlement key', async () => {
    const dir = join(fresh(), 'state', 'keys');
    const keys = await GatewayKeys.loadOrCreate(dir);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'session-token.private.jwk.json'))).toBe(0o600);
    expect(mode(join(dir, 'entitlements.private.jwk.json'))).toBe(0o600);
    const session = await loadOrCreateKey(join(dir, 'session-token.private.jwk.json'));
    const entitlements = await loadOrCreateKey(join(dir, 'entitlements.private.jwk.json'));
    expect(keys.session.kid).toBe(session.kid);
    expect(keys.entitlements.kid).toBe(entitlements.kid);
    expect(keys.session.kid).not.toBe(keys.entitlements.kid);
    expect(keys.jwks()).toStrictEqual({ keys: [session.publicJwk, entitlements.publicJwk] });
  });

  it('loads the same two keys on the next start', async () => {
    const dir = fresh();
    const first = await GatewayKeys.loadOrCreate(dir);
    const second = await GatewayKeys.loadOrCreate(dir);
    expect(second.session.kid).toBe(first.session.kid);
    expect(second.entitlements.kid).toBe(first.entitlements.kid);
    expect(second.jwks()).toStrictEqual(first.jwks());
  });

  it('refuses one key used for both: a session token could pass as an entitlement document', async () => {
    const dir = fresh();
    await GatewayKeys.loadOrCreate(dir);
    const session = readFileSync(join(dir, 'session-token.private.jwk.json'), 'utf8');
    writeFileSync(join(dir, 'entitlements.private.jwk.json'), session);
    await expect(GatewayKeys.loadOrCreate(dir)).rejects.toThrow(
      new Error(`The two signing keys in ${dir} must differ`),
    );
  });
});
