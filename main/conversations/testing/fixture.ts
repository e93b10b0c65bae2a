import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySecretStore } from '../../node/adapters';
import type { SecretStore } from '../../platform';
import { ConversationStore, type ConversationStoreOptions } from '../ConversationStore';

/** A clock tests move by hand. */
export class ManualClock {
  constructor(public time = Date.parse('2026-11-26T09:00:00.000Z')) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

/** A temporary store folder, its secret store key, and a way to open stores on it as if after a restart. */
export class StoreFixture {
  readonly secretKey = randomBytes(32);
  readonly clock = new ManualClock();
  private readonly stores: ConversationStore[] = [];

  private constructor(readonly dir: string) {}

  static async create(): Promise<StoreFixture> {
    return new StoreFixture(await mkdtemp(join(tmpdir(), 'clearance-conversations-')));
  }

  secrets(): SecretStore {
    return new MemorySecretStore(this.secretKey);
  }

  /** A store on the folder, as a fresh process would build it. */
  store(overrides: Partial<ConversationStoreOptions> = {}): ConversationStore {
    const store = new ConversationStore({
      dir: this.dir,
      secrets: this.secrets(),
      clock: this.clock,
      log: () => {},
      ...overrides,
    });
    this.stores.push(store);
    return store;
  }

  /** Every file under the folder (relative paths), recursively. */
  async files(sub = ''): Promise<string[]> {
    const found: string[] = [];
    for (const entry of await readdir(join(this.dir, sub), { withFileTypes: true })) {
      const relative = sub ? join(sub, entry.name) : entry.name;
      if (entry.isDirectory()) found.push(...(await this.files(relative)));
      else found.push(relative);
    }
    return found.sort();
  }

  /** The bytes of every file under the folder, concatenated. */
  async allBytes(): Promise<Buffer> {
    const files = await this.files();
    return Buffer.concat(await Promise.all(files.map((file) => readFile(join(this.dir, file)))));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.stores.map((store) => store.close().catch(() => {})));
    await rm(this.dir, { recursive: true, force: true });
  }
}
