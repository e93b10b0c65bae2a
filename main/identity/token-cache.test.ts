import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TokenCacheContext } from '@azure/msal-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../node/adapters';
import type { SecretStore } from '../platform';
import { chooseTokenPersistence, EncryptedTokenCachePlugin } from './token-cache';

/** A stand-in for MSAL's cache: what it was given, and what it serializes to. */
function fakeContext(serialized: string, changed: boolean) {
  const received: string[] = [];
  const context = {
    cacheHasChanged: changed,
    tokenCache: {
      serialize: () => serialized,
      deserialize: (text: string) => received.push(text),
    },
  } as unknown as TokenCacheContext;
  return { context, received };
}

const CACHE = JSON.stringify({ RefreshToken: { rt: { secret: 'refresh-token-secret-value' } } });

describe('EncryptedTokenCachePlugin', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clearance-token-cache-'));
    path = join(dir, 'nested', 'cache.bin');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips the cache through an encrypted, owner-only file with no plaintext in it', async () => {
    const secrets = new MemorySecretStore();
    await new EncryptedTokenCachePlugin(secrets, path).afterCacheAccess(fakeContext(CACHE, true).context);

    const bytes = await readFile(path);
    expect(bytes.toString('latin1')).not.toContain('refresh-token-secret-value');
    expect((await stat(path)).mode & 0o077).toBe(0);
    expect(await readdir(join(dir, 'nested'))).toEqual(['cache.bin']);

    const reader = new EncryptedTokenCachePlugin(secrets, path);
    const { context, received } = fakeContext('', false);
    await reader.beforeCacheAccess(context);
    expect(received).toEqual([CACHE]);
  });

  it('hands MSAL the latest cache on every access without reading the file again', async () => {
    const secrets = new MemorySecretStore();
    const plugin = new EncryptedTokenCachePlugin(secrets, path);
    await plugin.beforeCacheAccess(fakeContext('', false).context);
    await plugin.afterCacheAccess(fakeContext(CACHE, true).context);
    await rm(path);
    const { context, received } = fakeContext('', false);
    await plugin.beforeCacheAccess(context);
    expect(received).toEqual([CACHE]);
  });

  it('writes nothing when MSAL reports no change', async () => {
    await new EncryptedTokenCachePlugin(new MemorySecretStore(), path).afterCacheAccess(
      fakeContext(CACHE, false).context,
    );
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
  });

  it('treats a file encrypted under another key as empty, and replaces it on the next write', async () => {
    await new EncryptedTokenCachePlugin(new MemorySecretStore(), path).afterCacheAccess(
      fakeContext(CACHE, true).context,
    );
    const logs: string[] = [];
    const secrets = new MemorySecretStore(randomBytes(32));
    const plugin = new EncryptedTokenCachePlugin(secrets, path, (line) => logs.push(line));
    const { context, received } = fakeContext('', false);
    await plugin.beforeCacheAccess(context);
    expect(received).toEqual([]);
    expect(logs.join('\n')).toMatch(/could not be decrypted/);

    await plugin.afterCacheAccess(fakeContext('{"new":true}', true).context);
    expect(Buffer.from(secrets.decrypt(await readFile(path))).toString()).toBe('{"new":true}');
  });

  it('deletes the file and forgets the cache on clear', async () => {
    const plugin = new EncryptedTokenCachePlugin(new MemorySecretStore(), path);
    await plugin.afterCacheAccess(fakeContext(CACHE, true).context);
    await plugin.clear();
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
    const { context, received } = fakeContext('', false);
    await plugin.beforeCacheAccess(context);
    expect(received).toEqual([]);
  });

  it('leaves no temporary files behind', async () => {
    const plugin = new EncryptedTokenCachePlugin(new MemorySecretStore(), path);
    await Promise.all([1, 2, 3].map((n) => plugin.afterCacheAccess(fakeContext(`{"n":${n}}`, true).context)));
    expect(await readdir(join(dir, 'nested'))).toEqual(['cache.bin']);
  });
});

describe('chooseTokenPersistence', () => {
  const store = (backend: 'os' | 'basic_text' | 'unknown', available = true): SecretStore => ({
    isAvailable: () => available,
    backend: () => backend,
    encrypt: (p) => p,
    decrypt: (c) => c,
  });

  it('encrypts to disk only with a real OS secret store, unless IT allows basic_text', () => {
    expect(chooseTokenPersistence(store('os'), false)).toBe('encrypted');
    expect(chooseTokenPersistence(store('basic_text'), false)).toBe('session-only');
    expect(chooseTokenPersistence(store('unknown'), false)).toBe('session-only');
    expect(chooseTokenPersistence(store('basic_text'), true)).toBe('encrypted');
    expect(chooseTokenPersistence(store('os', false), true)).toBe('session-only');
  });
});
