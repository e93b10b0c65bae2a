import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, compactVerify, importJWK } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../node/adapters';
import type { AppPaths, SecretStore } from '../platform';
import { signWithDeviceKey } from './jws';
import {
  DeviceKeyError,
  DeviceKeyStore,
  NullHardwareKeyProvider,
  type DevicePublicJwk,
  type HardwareKeyProvider,
} from './key';

let paths: AppPaths;
const quiet = () => undefined;

beforeEach(async () => {
  const root = await mkdtemp(join(tmpdir(), 'clearance-key-'));
  paths = { userData: join(root, 'userData'), logs: join(root, 'logs') };
});

afterEach(async () => {
  await rm(join(paths.userData, '..'), { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The private key as the test can recover it, by decrypting the key file with the same store. */
async function recoverPrivateKey(store: DeviceKeyStore, secrets: SecretStore) {
  const stored = JSON.parse(await readFile(store.filePath, 'utf8')) as { encryptedPrivateKey: string };
  const der = Buffer.from(secrets.decrypt(Buffer.from(stored.encryptedPrivateKey, 'base64')));
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return { der, jwk: key.export({ format: 'jwk' }), pem: key.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

describe('DeviceKeyStore', () => {
  it('creates a software P-256 key once and opens the same key in a later run', async () => {
    const secrets = new MemorySecretStore();
    const first = await new DeviceKeyStore({ paths, secrets, log: quiet }).load();
    const again = await new DeviceKeyStore({ paths, secrets, log: quiet }).load();
    expect(first.assurance).toBe('software');
    expect(first.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(again.thumbprint).toBe(first.thumbprint);
    expect(again.createdAt).toBe(first.createdAt);
    expect(first.deviceId).toBe(first.thumbprint);
  });

  it('reports the RFC 7638 thumbprint of the public key', async () => {
    const key = await new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet }).load();
    expect(key.thumbprint).toBe(await calculateJwkThumbprint({ ...key.publicJwk }, 'sha256'));
    expect(key.thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('signs JWS that verify against its public key', async () => {
    const key = await new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet }).load();
    const jws = await signWithDeviceKey(key, 'posture+jwt', { hello: 'world' });
    const verified = await compactVerify(jws, await importJWK({ ...key.publicJwk }, 'ES256'));
    expect(verified.protectedHeader).toMatchObject({ alg: 'ES256', typ: 'posture+jwt', jwk: key.publicJwk });
    expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual({ hello: 'world' });
  });

  it('shares one creation between concurrent callers', async () => {
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet });
    const [a, b] = await Promise.all([store.load(), store.load()]);
    expect(a).toBe(b);
    expect((await filesUnder(paths.userData)).map((f) => f.slice(paths.userData.length))).toEqual(['/device-key.json']);
  });

  it('writes the key file readable only by the user', async () => {
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet });
    await store.load();
    if (process.platform !== 'win32') expect((await stat(store.filePath)).mode & 0o777).toBe(0o600);
  });

  it('never writes the private part unencrypted anywhere under userData', async () => {
    const secrets = new MemorySecretStore();
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    const key = await store.load();
    await signWithDeviceKey(key, 'posture+jwt', { n: 1 });
    const { der, jwk, pem } = await recoverPrivateKey(store, secrets);
    const d = String(jwk.d);
    expect(d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const dBytes = Buffer.from(d, 'base64url');
    const needles = [
      Buffer.from(d),
      dBytes,
      Buffer.from(dBytes.toString('hex')),
      Buffer.from(dBytes.toString('base64')),
      Buffer.from(pem),
      Buffer.from('PRIVATE KEY'),
      der,
    ];
    const files = await filesUnder(paths.userData);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const bytes = await readFile(file);
      for (const needle of needles) expect(bytes.includes(needle), `${file} contains key material`).toBe(false);
    }
    expect(JSON.stringify(key)).not.toContain(d);
    expect(JSON.stringify(key)).toContain(key.thumbprint);
  });

  it('refuses to create a key when no secret store is available, and writes nothing', async () => {
    const secrets: SecretStore = {
      ...new MemorySecretStore(),
      isAvailable: () => false,
      backend: () => 'unknown',
      encrypt: () => {
        throw new Error('unavailable');
      },
      decrypt: () => {
        throw new Error('unavailable');
      },
    };
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    const error = await store.load().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceKeyError);
    expect(error).toMatchObject({ code: 'DEVICE_BLOCKED', problem: 'secret-store-unavailable' });
    expect((error as Error).message).toMatch(/secret store is not available.*keyring/);
    await expect(stat(paths.userData)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses the basic_text secret store, whose key is public', async () => {
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(undefined, 'basic_text'), log: quiet });
    await expect(store.load()).rejects.toMatchObject({ problem: 'secret-store-insecure' });
  });

  it('lets a later load succeed after the secret store comes back', async () => {
    let available = false;
    const memory = new MemorySecretStore();
    const secrets: SecretStore = {
      isAvailable: () => available,
      backend: () => 'os',
      encrypt: (p) => memory.encrypt(p),
      decrypt: (c) => memory.decrypt(c),
    };
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    await expect(store.load()).rejects.toBeInstanceOf(DeviceKeyError);
    available = true;
    expect((await store.load()).assurance).toBe('software');
  });

  it('sets aside a key file it cannot decrypt and attests as a new device', async () => {
    const messages: string[] = [];
    const first = await new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet }).load();
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: (m) => messages.push(m) });
    const second = await store.load();
    expect(second.thumbprint).not.toBe(first.thumbprint);
    expect(messages.join('\n')).toContain('could not be decrypted');
    const names = (await readdir(paths.userData)).sort();
    expect(names).toHaveLength(2);
    expect(names[1]).toMatch(/^device-key\.json\.unreadable-\d+$/);
  });

  it('sets aside a key file whose public key does not match its private key', async () => {
    const secrets = new MemorySecretStore();
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    const original = await store.load();
    const file = JSON.parse(await readFile(store.filePath, 'utf8')) as { publicJwk: DevicePublicJwk };
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    file.publicJwk = { ...file.publicJwk, x: String(other.x), y: String(other.y) };
    await writeFile(store.filePath, JSON.stringify(file));
    const reopened = await new DeviceKeyStore({ paths, secrets, log: quiet }).load();
    expect(reopened.thumbprint).not.toBe(original.thumbprint);
    expect(reopened.publicJwk.x).not.toBe(other.x);
  });

  it('replaces a garbled key file instead of failing forever', async () => {
    const secrets = new MemorySecretStore();
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    await store.load();
    await writeFile(store.filePath, '{"format":"something else"');
    expect((await new DeviceKeyStore({ paths, secrets, log: quiet }).load()).assurance).toBe('software');
  });

  it('uses a hardware key when the provider offers one, and writes no key file', async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = pair.publicKey.export({ format: 'jwk' });
    const hardware: HardwareKeyProvider = {
      name: 'test-tpm',
      openOrCreate: async () => ({
        publicJwk: { kty: 'EC', crv: 'P-256', x: String(jwk.x), y: String(jwk.y) },
        createdAt: '2026-01-01T00:00:00.000Z',
        sign: async (input) =>
          new Uint8Array(sign('sha256', input, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' })),
      }),
    };
    const key = await new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), hardware, log: quiet }).load();
    expect(key.assurance).toBe('hardware');
    await compactVerify(await signWithDeviceKey(key, 'dpop+jwt', {}), pair.publicKey);
    await expect(stat(paths.userData)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('falls back to a software key with the Null hardware provider or a failing one', async () => {
    const secrets = new MemorySecretStore();
    const none = await new DeviceKeyStore({
      paths,
      secrets,
      hardware: new NullHardwareKeyProvider(),
      log: quiet,
    }).load();
    expect(none.assurance).toBe('software');
    const broken: HardwareKeyProvider = {
      name: 'broken',
      openOrCreate: () => Promise.reject(new Error('helper missing')),
    };
    const fallback = await new DeviceKeyStore({ paths, secrets, hardware: broken, log: quiet }).load();
    expect(fallback.thumbprint).toBe(none.thumbprint);
  });
});
