import { readFileSync } from 'node:fs';
import { Catalog, type CatalogFile } from './catalog';
import { sha256Hex } from './policy/candidate';
import type { RefusedReload } from './policy/engine';

/** Result of one catalog reload. */
export type CatalogReloadResult =
  | { readonly ok: true; readonly changed: boolean; readonly revision: string }
  | { readonly ok: false; readonly error: string };

/**
 * The catalog in force and where it comes from (a watched file or fixed content).
 *
 * A reload reads the whole file into a candidate and swaps it in only when it is complete
 * and valid; a missing, empty, truncated or invalid file is refused once per distinct
 * content, logged, and kept for health, and the catalog in force stays.
 */
export class CatalogSource {
  private catalog: Catalog;
  private fileHash: string | undefined;
  private refused: RefusedReload | undefined;
  private loaded = new Date().toISOString();

  private constructor(
    readonly path: string | undefined,
    initial: Catalog,
    initialHash: string | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.catalog = initial;
    this.fileHash = initialHash;
  }

  /** Loads the catalog file (or validates the given content); throws when it is unusable at start. */
  static open(source: string | CatalogFile, log: (line: string) => void): CatalogSource {
    if (typeof source === 'object')
      return new CatalogSource(undefined, Catalog.fromJson(source, 'catalog option'), undefined, log);
    const text = readFileSync(source, 'utf8');
    return new CatalogSource(source, Catalog.fromText(text, `catalog ${source}`), sha256Hex(text), log);
  }

  /** The catalog in force. */
  current(): Catalog {
    return this.catalog;
  }

  /** When the catalog in force was loaded (ISO 8601). */
  get loadedAt(): string {
    return this.loaded;
  }

  /** The last refused candidate since the catalog in force was loaded. */
  get lastRefused(): RefusedReload | undefined {
    return this.refused;
  }

  /** Re-reads the file; `changed` is true when a new catalog is now in force. */
  reload(): CatalogReloadResult {
    if (this.path === undefined) return { ok: false, error: 'the catalog was given as content, not a file' };
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      return this.refuse(`cannot read catalog ${this.path}: ${(error as Error).message}`, `unreadable`);
    }
    const hash = sha256Hex(text);
    if (hash === this.fileHash) {
      this.refused = undefined;
      return { ok: true, changed: false, revision: this.catalog.revision };
    }
    if (this.refused?.contentHash === hash) return { ok: false, error: this.refused.reason };
    let next: Catalog;
    try {
      next = Catalog.fromText(text, `catalog ${this.path}`);
    } catch (error) {
      return this.refuse((error as Error).message, hash);
    }
    this.fileHash = hash;
    this.refused = undefined;
    if (next.revision === this.catalog.revision) return { ok: true, changed: false, revision: next.revision };
    this.catalog = next;
    this.loaded = new Date().toISOString();
    this.log(`catalog ${next.revision} in force: ${next.models.length} models`);
    return { ok: true, changed: true, revision: next.revision };
  }

  private refuse(reason: string, contentHash: string): CatalogReloadResult {
    if (this.refused?.contentHash !== contentHash) {
      this.log(`catalog reload rejected: ${reason} (keeping ${this.catalog.revision})`);
    }
    this.refused = { at: new Date().toISOString(), reason, contentHash };
    return { ok: false, error: reason };
  }
}
