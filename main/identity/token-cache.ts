import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import type { SecretStore } from '../platform';

/** Whether tokens survive a restart (encrypted on disk) or live in memory only. */
export type TokenPersistence = 'encrypted' | 'session-only';

/** The token cache file's name inside the app's user-data folder. */
export const TOKEN_CACHE_FILE = 'identity-token-cache.bin';

/**
 * Decides whether the token cache may be written to disk.
 *
 * Only when the OS secret store really protects it: Linux's `basic_text` backend (a key built
 * into Chromium) and an `unknown` backend are refused unless IT allows it in managed config.
 */
export function chooseTokenPersistence(secrets: SecretStore, allowBasicText: boolean): TokenPersistence {
  if (!secrets.isAvailable()) return 'session-only';
  const backend = secrets.backend();
  if (backend === 'os') return 'encrypted';
  return allowBasicText ? 'encrypted' : 'session-only';
}

/**
 * An MSAL cache plugin that keeps the token cache encrypted with the OS secret store.
 *
 * MSAL expects every `beforeCacheAccess` to load the persisted cache (it empties its memory
 * before some silent calls), so the plugin keeps the last serialized cache in memory and
 * reads the file only once; this process is its only writer. Every change rewrites the whole
 * file: a temporary file (mode 0600), fsync, then rename, so a crash leaves either the old cache
 * or the new one. A file that no longer decrypts (the OS key changed) counts as empty and is
 * replaced on the next write.
 */
export class EncryptedTokenCachePlugin implements ICachePlugin {
  private loaded = false;
  private snapshot: string | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly secrets: SecretStore,
    readonly path: string,
    private readonly log: (message: string) => void = () => {},
  ) {}

  async beforeCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!this.loaded) {
      this.loaded = true;
      this.snapshot = await this.read();
    }
    if (this.snapshot !== undefined) context.tokenCache.deserialize(this.snapshot);
  }

  async afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!context.cacheHasChanged) return;
    const serialized = context.tokenCache.serialize();
    this.snapshot = serialized;
    const write = this.writing.then(() => this.write(serialized));
    this.writing = write.catch(() => {});
    await write;
  }

  /** Forgets the cache and deletes its file (sign-out). */
  async clear(): Promise<void> {
    await this.writing;
    this.loaded = true;
    this.snapshot = undefined;
    await rm(this.path, { force: true });
  }

  private async read(): Promise<string | undefined> {
    let cipher: Buffer;
    try {
      cipher = await readFile(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.log(`Token cache ${this.path} could not be read: ${(error as Error).message}`);
      return undefined;
    }
    try {
      return Buffer.from(this.secrets.decrypt(cipher)).toString('utf8');
    } catch (error) {
      this.log(`Token cache ${this.path} could not be decrypted (${(error as Error).message}); starting signed out`);
      return undefined;
    }
  }

  private async write(serialized: string): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const cipher = this.secrets.encrypt(Buffer.from(serialized, 'utf8'));
    const temp = join(dir, `.${basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(cipher);
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => {});
      await rm(temp, { force: true });
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, this.path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
}
