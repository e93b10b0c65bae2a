import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, compactVerify, importJWK } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
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

describe('DeviceKeyStore, each check named', () => {
  const CLOCK = { now: () => Date.UTC(2026, 11, 6, 5, 0, 0) };

  function hardwareOffering(publicJwk: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const labels: string[] = [];
    const provider: HardwareKeyProvider = {
      name: 'test-tpm',
      openOrCreate: async (label) => {
        labels.push(label);
        return {
          publicJwk: publicJwk as unknown as DevicePublicJwk,
          createdAt: '2026-01-01T00:00:00.000Z',
          sign: async () => new Uint8Array(64),
          ...extra,
        };
      },
    };
    return { provider, labels };
  }

  function p256() {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    return { kty: 'EC', crv: 'P-256', x: String(jwk.x), y: String(jwk.y) };
  }

  it('names the null provider and asks a hardware provider for the installation’s key by its label', async () => {
    expect(new NullHardwareKeyProvider().name).toBe('none');
    const jwk = p256();
    const attestor = { endorsement: async () => ({}), activateAndCertify: async () => ({}) };
    const { provider, labels } = hardwareOffering(jwk, { attestor });
    const key = await new DeviceKeyStore({
      paths,
      secrets: new MemorySecretStore(),
      hardware: provider,
      log: quiet,
    }).load();
    expect(labels).toEqual(['clearance-device-key']);
    expect(key).toMatchObject({ assurance: 'hardware', createdAt: '2026-01-01T00:00:00.000Z', publicJwk: jwk });
    expect(key.attestor).toBe(attestor);
    expect(JSON.parse(JSON.stringify(key))).toEqual({
      deviceId: key.thumbprint,
      thumbprint: key.thumbprint,
      publicJwk: jwk,
      assurance: 'hardware',
      createdAt: '2026-01-01T00:00:00.000Z',
    });
  });

  it('gives a software key no attestor', async () => {
    const key = await new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet }).load();
    expect('attestor' in key).toBe(false);
  });

  it.each([
    ['not EC', { kty: 'RSA' }],
    ['not P-256', { crv: 'P-384' }],
    ['x missing', { x: undefined }],
    ['y not text', { y: 7 }],
  ])('falls back to a software key when the hardware key is %s, and says so', async (_what, change) => {
    const messages: string[] = [];
    const errors: string[] = [];
    const { provider } = hardwareOffering({ ...p256(), ...change });
    const key = await new DeviceKeyStore({
      paths,
      secrets: new MemorySecretStore(),
      hardware: provider,
      log: (message, error) => {
        messages.push(message);
        errors.push((error as Error).message);
      },
    }).load();
    expect(key.assurance).toBe('software');
    expect(messages).toEqual(['The hardware key store (test-tpm) could not be used; falling back to a software key']);
    expect(errors).toEqual(['The device key is not a P-256 key']);
  });

  it('dates the key and names the set-aside file by the clock it is given', async () => {
    const secrets = new MemorySecretStore();
    const first = await new DeviceKeyStore({ paths, secrets, clock: CLOCK, log: quiet }).load();
    expect(first.createdAt).toBe('2026-12-06T05:00:00.000Z');
    const messages: string[] = [];
    await new DeviceKeyStore({
      paths,
      secrets: new MemorySecretStore(),
      clock: CLOCK,
      log: (message) => messages.push(message),
    }).load();
    const aside = `${join(paths.userData, 'device-key.json')}.unreadable-${CLOCK.now()}`;
    expect((await readdir(paths.userData)).sort()).toEqual([
      'device-key.json',
      `device-key.json.unreadable-${CLOCK.now()}`,
    ]);
    expect(messages).toEqual([
      `The device key file could not be decrypted (the OS keyring changed or the profile came from another machine); it was moved to ${aside} and a new device key is being created`,
    ]);
  });

  it('writes to the console when no log is given', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const broken: HardwareKeyProvider = { name: 'broken', openOrCreate: () => Promise.reject(new Error('gone')) };
      await new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), hardware: broken }).load();
      expect(warn).toHaveBeenCalledWith(
        'The hardware key store (broken) could not be used; falling back to a software key',
        expect.objectContaining({ message: 'gone' }),
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('names the error class', async () => {
    const error = await new DeviceKeyStore({
      paths,
      secrets: new MemorySecretStore(undefined, 'basic_text'),
      log: quiet,
    })
      .load()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceKeyError);
    expect(error).toMatchObject({ name: 'DeviceKeyError', code: 'DEVICE_BLOCKED', problem: 'secret-store-insecure' });
    expect((error as Error).message).toBe(
      'Clearance cannot protect this device’s key: the only secret store available uses a fixed, public key (basic_text). ' +
        'Install and unlock GNOME Keyring or KWallet, then start Clearance again.',
    );
    await expect(stat(paths.userData)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('gives the whole sentence when no secret store is available', async () => {
    const memory = new MemorySecretStore();
    const secrets: SecretStore = {
      isAvailable: () => false,
      backend: () => 'os',
      encrypt: (plain) => memory.encrypt(plain),
      decrypt: (cipher) => memory.decrypt(cipher),
    };
    await expect(new DeviceKeyStore({ paths, secrets, log: quiet }).load()).rejects.toThrow(
      'Clearance cannot protect this device’s key because the operating system’s secret store is not available. ' +
        'On Linux, install and unlock a keyring (GNOME Keyring or KWallet), then start Clearance again.',
    );
  });

  it('fails, rather than replace the key, when the key file cannot be read for another reason than its absence', async () => {
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet });
    await mkdir(store.filePath, { recursive: true });
    await expect(store.load()).rejects.toMatchObject({ code: 'EISDIR' });
    expect(await readdir(paths.userData)).toEqual(['device-key.json']);
  });

  it.each([
    ['x starts with a character outside base64url', (x: string) => `+${x}`],
    ['x ends with a character outside base64url', (x: string) => `${x}=`],
    ['x is empty', () => ''],
  ])('sets aside a key file whose public key is malformed (%s) as not one Clearance wrote', async (_what, change) => {
    const secrets = new MemorySecretStore();
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    await store.load();
    const file = JSON.parse(await readFile(store.filePath, 'utf8')) as { publicJwk: DevicePublicJwk };
    file.publicJwk = { ...file.publicJwk, x: change(file.publicJwk.x) };
    await writeFile(store.filePath, JSON.stringify(file));
    const messages: string[] = [];
    await new DeviceKeyStore({ paths, secrets, log: (m) => messages.push(m) }).load();
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/^The device key file is not a device key file Clearance wrote; it was moved to /);
  });

  it.each([
    ['format', { format: 'other' }],
    ['version', { version: 2 }],
    ['assurance', { assurance: 'hardware' }],
    ['createdAt', { createdAt: 5 }],
    ['encrypted private key', { encryptedPrivateKey: '' }],
    ['curve', { publicJwk: { kty: 'EC', crv: 'P-384', x: 'a', y: 'b' } }],
  ])('sets aside a key file with a wrong %s as not one Clearance wrote', async (_what, change) => {
    const secrets = new MemorySecretStore();
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    const original = await store.load();
    const file = JSON.parse(await readFile(store.filePath, 'utf8')) as Record<string, unknown>;
    await writeFile(store.filePath, JSON.stringify({ ...file, ...change }));
    const messages: string[] = [];
    const replaced = await new DeviceKeyStore({ paths, secrets, log: (m) => messages.push(m) }).load();
    expect(replaced.thumbprint).not.toBe(original.thumbprint);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/^The device key file is not a device key file Clearance wrote; it was moved to /);
  });

  it('says why when the public key in the file does not match its private key', async () => {
    const secrets = new MemorySecretStore();
    const store = new DeviceKeyStore({ paths, secrets, log: quiet });
    await store.load();
    const file = JSON.parse(await readFile(store.filePath, 'utf8')) as { publicJwk: DevicePublicJwk };
    const other = p256();
    for (const changed of [{ x: other.x }, { y: other.y }]) {
      await writeFile(store.filePath, JSON.stringify({ ...file, publicJwk: { ...file.publicJwk, ...changed } }));
      const messages: string[] = [];
      await new DeviceKeyStore({ paths, secrets, log: (m) => messages.push(m) }).load();
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(
        /^The device key file holds a public key that does not match its private key; it was moved to /,
      );
      await writeFile(store.filePath, JSON.stringify(file));
    }
  });

  it('keeps the file a person can read: pretty JSON ending in a newline', async () => {
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet });
    await store.load();
    const text = await readFile(store.filePath, 'utf8');
    expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    expect(JSON.parse(text)).toMatchObject({ format: 'clearance-device-key', version: 1, assurance: 'software' });
  });

  it('answers later loads with the key it has, even after its file is gone', async () => {
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet });
    expect(store.current).toBeUndefined();
    const key = await store.load();
    expect(store.current).toBe(key);
    await rm(store.filePath);
    expect(await store.load()).toBe(key);
  });
  it('fails, rather than make a key, when the profile folder is not a folder', async () => {
    await mkdir(join(paths.userData, '..'), { recursive: true });
    await writeFile(paths.userData, 'not a folder');
    const store = new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet });
    await expect(store.load()).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(await readFile(paths.userData, 'utf8')).toBe('not a folder');
  });

  it('wipes its copy of the private key once it is encrypted', async () => {
    const privateKeyObject = Object.getPrototypeOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey) as {
      export: (...args: unknown[]) => unknown;
    };
    const exported: Buffer[] = [];
    const original = privateKeyObject.export;
    const spy = vi.spyOn(privateKeyObject, 'export').mockImplementation(function (this: unknown, ...args: unknown[]) {
      const result = original.apply(this, args);
      if (Buffer.isBuffer(result)) exported.push(result);
      return result;
    });
    try {
      await new DeviceKeyStore({ paths, secrets: new MemorySecretStore(), log: quiet }).load();
    } finally {
      spy.mockRestore();
    }
    expect(exported).toHaveLength(1);
    expect(exported[0]!.length).toBeGreaterThan(0);
    expect(exported[0]!.every((byte) => byte === 0)).toBe(true);
  });
});
