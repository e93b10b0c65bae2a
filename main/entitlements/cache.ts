import { mkdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { z } from 'zod';
import { DataKey } from '../conversations/sealedFile';
import type { SecretStore } from '../platform';
import { writeFileAtomic } from '../storage/atomicFile';

/** The last verified entitlement document, as kept for offline display. */
export interface CachedEntitlements {
  /** The compact JWS as the gateway sent it; verified again on every load. */
  readonly jws: string;
  /** When it was fetched (ms since the epoch): the last time the gateway confirmed access. */
  readonly fetchedAt: number;
}

/** The file the person's data key is kept in, wrapped by the OS secret store. */
const KEY_FILE = 'data-key.bin';

const CachedEntitlementsFile = z.object({ jws: z.string().min(1), fetchedAt: z.number() });
/** One key of the stored key set: any JWK members, but at least its type. */
const JwksFileKey = z.looseObject({ kty: z.string() });
const JwksFile = z.object({ keys: z.array(JwksFileKey) });
const VersionsFile = z.record(z.string(), z.number().int().nonnegative());

/** Where {@link EntitlementCache} keeps its files, and how it reports problems. */
export interface EntitlementCacheOptions {
  readonly secrets: SecretStore;
  /** A folder of its own, e.g. `<profile>/entitlements`. */
  readonly directory: string;
  /**
   * The person the cache belongs to. When set, files are sealed with a data key bound to them (kept
   * wrapped by the OS secret store in the folder), so a file copied into another person's cache
   * reads as absent; without it each file is encrypted with the OS secret store directly.
   */
  readonly account?: string;
  readonly log?: (message: string, error?: unknown) => void;
}

/**
 * The entitlement state kept on disk, each file encrypted with the OS secret store.
 *
 * Holds the last verified document, the gateway key set that verified it (so a restart can verify it
 * again offline) and the highest `ver` accepted per user. Nothing is written when the secret store is
 * unavailable: offline display is a convenience, plaintext entitlements on disk are not. A file that
 * cannot be decrypted or parsed reads as absent.
 */
export class EntitlementCache {
  private writes: Promise<unknown> = Promise.resolve();
  private warnedUnavailable = false;
  private key: Promise<DataKey> | undefined;

  constructor(private readonly options: EntitlementCacheOptions) {}

  /** The file names this cache writes, for diagnostics and tests. */
  get files(): { readonly document: string; readonly key: string; readonly jwks: string; readonly versions: string } {
    return {
      document: join(this.options.directory, 'document.bin'),
      key: join(this.options.directory, KEY_FILE),
      jwks: join(this.options.directory, 'jwks.bin'),
      versions: join(this.options.directory, 'versions.bin'),
    };
  }

  loadDocument(): Promise<CachedEntitlements | undefined> {
    return this.read(this.files.document, CachedEntitlementsFile);
  }

  saveDocument(document: CachedEntitlements): Promise<void> {
    return this.write(this.files.document, document);
  }

  /** Forgets the document (sign-out); the version high-water marks stay, so replays stay refused. */
  clearDocument(): Promise<void> {
    return this.enqueue(() => rm(this.files.document, { force: true }));
  }

  async loadJwks(): Promise<JSONWebKeySet | undefined> {
    return (await this.read(this.files.jwks, JwksFile)) as JSONWebKeySet | undefined;
  }

  saveJwks(jwks: JSONWebKeySet): Promise<void> {
    return this.write(this.files.jwks, jwks);
  }

  /** The highest `ver` accepted for each subject. */
  async loadVersions(): Promise<Readonly<Record<string, number>>> {
    return (await this.read(this.files.versions, VersionsFile)) ?? {};
  }

  saveVersions(versions: Readonly<Record<string, number>>): Promise<void> {
    return this.write(this.files.versions, versions);
  }

  private async read<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
    await this.writes.catch(() => undefined);
    let cipher: Buffer;
    try {
      cipher = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.options.log?.(`Could not read ${path}`, error);
      return undefined;
    }
    if (!this.options.secrets.isAvailable()) return undefined;
    try {
      const plain = new TextDecoder().decode(await this.decrypt(cipher, path));
      const parsed = schema.safeParse(JSON.parse(plain));
      if (parsed.success) return parsed.data;
      this.options.log?.(`Ignored ${path}: it does not hold what this version of Clearance writes`);
    } catch (error) {
      this.options.log?.(`Ignored ${path}: it could not be decrypted with this account's secret store`, error);
    }
    return undefined;
  }

  private write(path: string, value: unknown): Promise<void> {
    if (!this.options.secrets.isAvailable()) {
      if (!this.warnedUnavailable) {
        this.warnedUnavailable = true;
        this.options.log?.('The OS secret store is unavailable: entitlements are kept in memory only');
      }
      return Promise.resolve();
    }
    return this.enqueue(async () =>
      writeIntoFolder(path, await this.encrypt(new TextEncoder().encode(JSON.stringify(value)), path)),
    );
  }

  private async encrypt(plain: Uint8Array, path: string): Promise<Uint8Array> {
    if (this.options.account === undefined) return this.options.secrets.encrypt(plain);
    return (await this.dataKey()).seal(plain, purposeOf(path));
  }

  private async decrypt(cipher: Uint8Array, path: string): Promise<Uint8Array> {
    if (this.options.account === undefined) return this.options.secrets.decrypt(cipher);
    return (await this.dataKey()).open(cipher, purposeOf(path));
  }

  /** The person's cache key: read once, or made (replacing one that is not theirs, whose files then read as absent). */
  private dataKey(): Promise<DataKey> {
    // Stryker disable next-line StringLiteral: unreachable default: encrypt() and decrypt() only ask for the data key when there is an account.
    const account = this.options.account ?? '';
    this.key ??= (async () => {
      try {
        return DataKey.unwrap(await readFile(this.files.key), this.options.secrets, account);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.options.log?.(`Replaced the entitlement cache key: ${(error as Error).message}`);
        }
      }
      const key = DataKey.generate(account);
      await writeIntoFolder(this.files.key, key.wrap(this.options.secrets));
      return key;
    })();
    return this.key;
  }

  /** Runs writes one after another so an older state can never land after a newer one. */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.writes.catch(() => undefined).then(task);
    this.writes = next;
    return next;
  }
}

function purposeOf(path: string): string {
  return `clearance:entitlements:v1:${basename(path)}`;
}

/** Writes atomically (main/storage/atomicFile.ts), creating the private cache folder first. */
async function writeIntoFolder(path: string, data: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, data);
}
