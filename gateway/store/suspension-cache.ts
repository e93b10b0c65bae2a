import type { UserSuspension, UserSuspensions } from './user-suspensions';

/**
 * Suspension lookups remembered for a few seconds, so an authenticated call does not ask the
 * (shared) database every time.
 *
 * A suspension or resumption made through this object drops the user's entry at once; one
 * made at another instance arrives over the change fan-out and calls `forget`. The time limit
 * is the safety net behind that fan-out (Redis pub/sub delivers at most once). A lookup that
 * started before a `forget` is not cached, so it cannot put back what was just dropped.
 */
export class CachedUserSuspensions implements UserSuspensions {
  private readonly entries = new Map<string, { readonly found: UserSuspension | undefined; readonly until: number }>();
  private generation = 0;

  constructor(
    private readonly inner: UserSuspensions,
    /** How long a lookup is reused, in milliseconds. */
    private readonly ttlMs = 5000,
    private readonly maxEntries = 100_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Users whose lookup is held (for metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** Drops what is remembered about `userId` (a change made here or at another instance). */
  forget(userId: string): void {
    this.generation++;
    this.entries.delete(userId);
  }

  async suspend(userId: string, actor: string, reason?: string): Promise<boolean> {
    try {
      return await this.inner.suspend(userId, actor, reason);
    } finally {
      this.forget(userId);
    }
  }

  async resume(userId: string): Promise<boolean> {
    try {
      return await this.inner.resume(userId);
    } finally {
      this.forget(userId);
    }
  }

  async find(userId: string): Promise<UserSuspension | undefined> {
    const now = this.clock();
    const hit = this.entries.get(userId);
    if (hit && hit.until > now) return hit.found;
    const generation = this.generation;
    const found = await this.inner.find(userId);
    if (generation === this.generation && this.ttlMs > 0) {
      if (this.entries.size >= this.maxEntries) this.entries.clear();
      this.entries.set(userId, { found, until: now + this.ttlMs });
    }
    return found;
  }
}
