import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataKey } from '../conversations/sealedFile';
import { MemorySecretStore } from '../node/adapters';
import type { SecretStore } from '../platform';
import { writeFileAtomic } from '../storage/atomicFile';
import { EntitlementCache } from './cache';

async function folder(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'clearance-cache-'));
}

const KEY = Buffer.alloc(32, 3);

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary file behind', async () => {
    const dir = await folder();
    const path = join(dir, 'state.bin');
    await writeFileAtomic(path, new TextEncoder().encode('first'));
    await writeFileAtomic(path, new TextEncoder().encode('second'));
    expect(await readFile(path, 'utf8')).toBe('second');
    expect(await readdir(dir)).toEqual(['state.bin']);
  });
});

describe('EntitlementCache', () => {
  it('round-trips the document, keys and versions, all encrypted', async () => {
    const directory = await folder();
    const cache = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory });
    await cache.saveDocument({ jws: 'header.Mythos-5-payload.signature', fetchedAt: 1234 });
    await cache.saveVersions({ 'user-ada': 42 });
    await cache.saveJwks({ keys: [{ kty: 'EC', kid: 'k1' }] });

    const again = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory });
    expect(await again.loadDocument()).toEqual({ jws: 'header.Mythos-5-payload.signature', fetchedAt: 1234 });
    expect(await again.loadVersions()).toEqual({ 'user-ada': 42 });
    expect(await again.loadJwks()).toEqual({ keys: [{ kty: 'EC', kid: 'k1' }] });

    for (const name of await readdir(directory)) {
      const bytes = await readFile(join(directory, name), 'latin1');
      expect(bytes).not.toContain('Mythos');
      expect(bytes).not.toContain('user-ada');
      expect(bytes).not.toContain('kid');
    }
  });

  it('reads a file encrypted under another key as absent', async () => {
    const directory = await folder();
    await new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory }).saveDocument({
      jws: 'a.b.c',
      fetchedAt: 1,
    });
    const logged: string[] = [];
    const other = new EntitlementCache({
      secrets: new MemorySecretStore(Buffer.alloc(32, 9)),
      directory,
      log: (message) => logged.push(message),
    });
    expect(await other.loadDocument()).toBeUndefined();
    expect(logged.join('\n')).toMatch(/could not be decrypted/);
  });

  it('reads a corrupted file as absent', async () => {
    const directory = await folder();
    const cache = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory });
    await writeFile(cache.files.document, 'garbage');
    expect(await cache.loadDocument()).toBeUndefined();
  });

  it('writes nothing when the OS secret store is unavailable', async () => {
    const directory = await folder();
    const unavailable: SecretStore = {
      isAvailable: () => false,
      backend: () => 'unknown',
      encrypt: () => {
        throw new Error('unavailable');
      },
      decrypt: () => {
        throw new Error('unavailable');
      },
    };
    const cache = new EntitlementCache({ secrets: unavailable, directory });
    await cache.saveDocument({ jws: 'a.b.c', fetchedAt: 1 });
    expect(await readdir(directory)).toEqual([]);
  });

  it('forgets the document on sign-out but keeps the version marks', async () => {
    const directory = await folder();
    const cache = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory });
    await cache.saveDocument({ jws: 'a.b.c', fetchedAt: 1 });
    await cache.saveVersions({ u: 3 });
    await cache.clearDocument();
    expect(await cache.loadDocument()).toBeUndefined();
    expect(await cache.loadVersions()).toEqual({ u: 3 });
  });
});

describe('EntitlementCache bound to a person', () => {
  const secrets = () => new MemorySecretStore(KEY);

  it('seals each file with the person’s data key, bound to the file it was written as', async () => {
    const directory = await folder();
    const cache = new EntitlementCache({ secrets: secrets(), directory, account: 'ada' });
    await cache.saveDocument({ jws: 'a.b.c', fetchedAt: 5 });
    await cache.saveVersions({ ada: 2 });
    expect((await readdir(directory)).sort()).toEqual(['data-key.bin', 'document.bin', 'versions.bin']);

    // The on-disk format later versions must keep reading: the key wrapped for the account, each file
    // sealed for the purpose named after it.
    const key = DataKey.unwrap(await readFile(cache.files.key), secrets(), 'ada');
    const plain = key.open(await readFile(cache.files.document), 'clearance:entitlements:v1:document.bin');
    expect(JSON.parse(plain.toString('utf8'))).toEqual({ jws: 'a.b.c', fetchedAt: 5 });

    const again = new EntitlementCache({ secrets: secrets(), directory, account: 'ada' });
    expect(await again.loadDocument()).toEqual({ jws: 'a.b.c', fetchedAt: 5 });
    expect(await again.loadVersions()).toEqual({ ada: 2 });
  });

  it('reads a file copied over another of its files as absent', async () => {
    const directory = await folder();
    const logged: string[] = [];
    const cache = new EntitlementCache({ secrets: secrets(), directory, account: 'ada', log: (m) => logged.push(m) });
    await cache.saveVersions({ ada: 2 });
    await writeFile(cache.files.document, await readFile(cache.files.versions));
    expect(await cache.loadDocument()).toBeUndefined();
    expect(logged).toEqual([
      `Ignored ${cache.files.document}: it could not be decrypted with this account's secret store`,
    ]);
  });

  it('reads another person’s files as absent, replacing the key that is not theirs', async () => {
    const directory = await folder();
    await new EntitlementCache({ secrets: secrets(), directory, account: 'ada' }).saveVersions({ ada: 9 });
    const logged: string[] = [];
    const grace = new EntitlementCache({ secrets: secrets(), directory, account: 'grace', log: (m) => logged.push(m) });
    expect(await grace.loadVersions()).toEqual({});
    expect(logged[0]).toBe('Replaced the entitlement cache key: the data key belongs to another person');
    // Grace's own key now: what she writes she reads back, and Ada's key is gone.
    await grace.saveVersions({ grace: 1 });
    expect(await new EntitlementCache({ secrets: secrets(), directory, account: 'grace' }).loadVersions()).toEqual({
      grace: 1,
    });
    expect(() => DataKey.unwrap(readFileSync(grace.files.key), secrets(), 'grace')).not.toThrow();
  });

  it('makes a key quietly the first time', async () => {
    const directory = join(await folder(), 'nested', 'entitlements');
    const logged: string[] = [];
    const cache = new EntitlementCache({ secrets: secrets(), directory, account: 'ada', log: (m) => logged.push(m) });
    await cache.saveDocument({ jws: 'a.b.c', fetchedAt: 5 });
    expect(logged).toEqual([]);
    expect(await cache.loadDocument()).toEqual({ jws: 'a.b.c', fetchedAt: 5 });
    if (process.platform !== 'win32') expect((await stat(directory)).mode & 0o777).toBe(0o700);
  });
});

describe('EntitlementCache reading and writing, each refusal named', () => {
  function unavailableStore(): SecretStore & { decrypts: number } {
    const memory = new MemorySecretStore(KEY);
    const store = {
      decrypts: 0,
      isAvailable: () => false,
      backend: () => 'unknown' as const,
      encrypt: (plain: Uint8Array) => memory.encrypt(plain),
      decrypt: (cipher: Uint8Array) => {
        store.decrypts += 1;
        return memory.decrypt(cipher);
      },
    };
    return store;
  }

  it('says once, not on every write, that the secret store is unavailable', async () => {
    const directory = await folder();
    const logged: string[] = [];
    const cache = new EntitlementCache({ secrets: unavailableStore(), directory, log: (m) => logged.push(m) });
    await cache.saveDocument({ jws: 'a.b.c', fetchedAt: 1 });
    await cache.saveVersions({ u: 1 });
    expect(logged).toEqual(['The OS secret store is unavailable: entitlements are kept in memory only']);
    expect(await readdir(directory)).toEqual([]);
  });

  it('reads nothing while the secret store is unavailable, even a file it could decrypt', async () => {
    const directory = await folder();
    await new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory }).saveDocument({
      jws: 'a.b.c',
      fetchedAt: 1,
    });
    const secrets = unavailableStore();
    expect(await new EntitlementCache({ secrets, directory }).loadDocument()).toBeUndefined();
    expect(secrets.decrypts).toBe(0);
  });

  it('logs a file it cannot read for another reason than its absence, and not an absent one', async () => {
    const directory = await folder();
    const logged: string[] = [];
    const cache = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory, log: (m) => logged.push(m) });
    expect(await cache.loadDocument()).toBeUndefined();
    expect(logged).toEqual([]);
    await mkdir(cache.files.document);
    expect(await cache.loadDocument()).toBeUndefined();
    expect(logged).toEqual([`Could not read ${cache.files.document}`]);
  });

  it.each([
    [
      'a document without its JWS',
      (cache: EntitlementCache) => cache.saveDocument({ jws: '', fetchedAt: 1 }),
      'document',
    ],
    [
      'a key set with a key of no type',
      (cache: EntitlementCache) => cache.saveJwks({ keys: [{ kid: 'k' }] } as never),
      'jwks',
    ],
    ['a negative version', (cache: EntitlementCache) => cache.saveVersions({ u: -1 }), 'versions'],
    ['a fractional version', (cache: EntitlementCache) => cache.saveVersions({ u: 1.5 }), 'versions'],
  ] as const)('reads %s as absent, and says why', async (_what, save, name) => {
    const directory = await folder();
    const logged: string[] = [];
    const cache = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory, log: (m) => logged.push(m) });
    await save(cache);
    const loaded = {
      document: () => cache.loadDocument(),
      jwks: () => cache.loadJwks(),
      versions: () => cache.loadVersions(),
    }[name];
    expect(await loaded()).toEqual(name === 'versions' ? {} : undefined);
    expect(logged).toEqual([`Ignored ${cache.files[name]}: it does not hold what this version of Clearance writes`]);
  });

  it('forgets a document that was never written without failing', async () => {
    const directory = await folder();
    const cache = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory });
    await expect(cache.clearDocument()).resolves.toBeUndefined();
  });

  it('reads what was saved just before, without waiting for the save', async () => {
    const directory = await folder();
    const cache = new EntitlementCache({ secrets: new MemorySecretStore(KEY), directory });
    void cache.saveDocument({ jws: 'a.b.c', fetchedAt: 1 });
    expect(await cache.loadDocument()).toEqual({ jws: 'a.b.c', fetchedAt: 1 });
  });
});
