import { readStateFile, writeStateFile } from './state-files';

/** What `oidc-provider` stores: a model's payload as a plain JSON object. */
export type ProviderPayload = Record<string, unknown> & {
  readonly grantId?: string;
  readonly uid?: string;
  readonly userCode?: string;
  consumed?: number;
};

/** The storage interface `oidc-provider` calls for each model (Session, Grant, RefreshToken, ...). */
export interface ProviderAdapter {
  upsert(id: string, payload: ProviderPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<ProviderPayload | undefined>;
  findByUid(uid: string): Promise<ProviderPayload | undefined>;
  findByUserCode(userCode: string): Promise<ProviderPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

interface StoredEntry {
  readonly model: string;
  readonly id: string;
  readonly payload: ProviderPayload;
  /** Epoch milliseconds; absent means no expiry. */
  readonly expiresAt?: number;
}

const STORE_FILE = 'sessions.json';

/** Models that belong to a grant and go when it is revoked (as in oidc-provider's own memory adapter). */
const GRANTABLE_MODELS = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/** Models kept across restarts, so a signed-in app stays signed in when the demo stack restarts. */
const DURABLE_MODELS = new Set(['Session', 'Grant', 'RefreshToken']);

/**
 * The provider's state: in memory, with sessions, grants and refresh tokens also saved to the state folder.
 *
 * Small by design (one developer's sign-ins), so lookups by uid or grant scan the entries.
 * Each change to a durable model is written (atomically) before the provider answers.
 */
export class ProviderStore {
  private readonly entries = new Map<string, StoredEntry>();
  private saving: Promise<void> = Promise.resolve();
  private saveQueued = false;

  private constructor(
    private readonly stateDir: string,
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {}

  /** Opens the store in `stateDir`, loading what an earlier start saved (expired entries are dropped). */
  static async open(
    stateDir: string,
    options: { readonly now?: () => number; readonly log?: (line: string) => void } = {},
  ): Promise<ProviderStore> {
    const store = new ProviderStore(stateDir, options.now ?? Date.now, options.log ?? (() => {}));
    const text = await readStateFile(stateDir, STORE_FILE);
    if (text !== undefined) {
      try {
        const saved = JSON.parse(text) as StoredEntry[];
        for (const entry of saved) {
          if (!DURABLE_MODELS.has(entry.model) || store.expired(entry)) continue;
          store.entries.set(keyOf(entry.model, entry.id), entry);
        }
      } catch (error) {
        store.log(`idp: ignoring unreadable ${STORE_FILE} (${(error as Error).message}); everyone signs in again`);
      }
    }
    return store;
  }

  /** The factory `oidc-provider` takes as its `adapter` setting. */
  adapterFactory(): (model: string) => ProviderAdapter {
    return (model) => this.adapterFor(model);
  }

  /** Waits for pending writes. */
  flush(): Promise<void> {
    return this.saving;
  }

  private adapterFor(model: string): ProviderAdapter {
    const durable = DURABLE_MODELS.has(model);
    const changed = () => (durable ? this.scheduleSave() : Promise.resolve());
    return {
      upsert: async (id, payload, expiresIn) => {
        this.entries.set(keyOf(model, id), {
          model,
          id,
          payload,
          ...(typeof expiresIn === 'number' ? { expiresAt: this.now() + expiresIn * 1000 } : {}),
        });
        await changed();
      },
      find: async (id) => this.get(model, id)?.payload,
      findByUid: async (uid) => this.findWhere(model, (p) => p.uid === uid),
      findByUserCode: async (userCode) => this.findWhere(model, (p) => p.userCode === userCode),
      consume: async (id) => {
        const entry = this.get(model, id);
        if (entry) {
          entry.payload.consumed = Math.floor(this.now() / 1000);
          await changed();
        }
      },
      destroy: async (id) => {
        if (this.entries.delete(keyOf(model, id))) await changed();
      },
      revokeByGrantId: async (grantId) => {
        let removedDurable = false;
        for (const [key, entry] of this.entries) {
          if (entry.payload.grantId === grantId && GRANTABLE_MODELS.has(entry.model)) {
            this.entries.delete(key);
            removedDurable ||= DURABLE_MODELS.has(entry.model);
          }
        }
        if (removedDurable) await this.scheduleSave();
      },
    };
  }

  private get(model: string, id: string): StoredEntry | undefined {
    const key = keyOf(model, id);
    const entry = this.entries.get(key);
    if (entry && this.expired(entry)) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private findWhere(model: string, matches: (payload: ProviderPayload) => boolean): ProviderPayload | undefined {
    for (const entry of this.entries.values()) {
      if (entry.model === model && !this.expired(entry) && matches(entry.payload)) return entry.payload;
    }
    return undefined;
  }

  private expired(entry: StoredEntry): boolean {
    return entry.expiresAt !== undefined && entry.expiresAt <= this.now();
  }

  private scheduleSave(): Promise<void> {
    if (!this.saveQueued) {
      this.saveQueued = true;
      this.saving = this.saving.then(async () => {
        this.saveQueued = false;
        const durable = [...this.entries.values()].filter((e) => DURABLE_MODELS.has(e.model) && !this.expired(e));
        try {
          await writeStateFile(this.stateDir, STORE_FILE, JSON.stringify(durable), { secret: true });
        } catch (error) {
          this.log(`idp: could not save sessions: ${(error as Error).message}`);
        }
      });
    }
    return this.saving;
  }
}

function keyOf(model: string, id: string): string {
  return `${model}:${id}`;
}
