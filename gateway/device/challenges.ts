import { randomBytes } from 'node:crypto';

/** A nonce the device must sign into its posture report. */
export interface DeviceChallenge {
  readonly nonce: string;
  readonly expiresAt: number;
}

/**
 * One-time, short-lived attestation nonces, each bound to the user who asked for it.
 */
export class ChallengeStore {
  private readonly outstanding = new Map<string, { userId: string; expiresAt: number }>();

  constructor(
    private readonly lifetimeSeconds = 120,
    private readonly maxOutstanding = 50_000,
    private readonly clock: () => number = () => Date.now() / 1000,
  ) {}

  /** Issues a fresh nonce for `userId`; throws when too many are outstanding. */
  issue(userId: string): DeviceChallenge {
    this.sweep();
    if (this.outstanding.size >= this.maxOutstanding) throw new Error('Too many outstanding device challenges');
    const nonce = randomBytes(32).toString('base64url');
    const expiresAt = Math.floor(this.clock()) + this.lifetimeSeconds;
    this.outstanding.set(nonce, { userId, expiresAt });
    return { nonce, expiresAt };
  }

  /** Uses up `nonce`; true only if it was issued to `userId` and has not expired or been used. */
  consume(nonce: string, userId: string): boolean {
    const entry = this.outstanding.get(nonce);
    if (!entry) return false;
    this.outstanding.delete(nonce);
    return entry.userId === userId && entry.expiresAt >= this.clock();
  }

  private sweep(): void {
    const now = this.clock();
    for (const [nonce, entry] of this.outstanding) if (entry.expiresAt < now) this.outstanding.delete(nonce);
  }
}
