/**
 * Credentials waiting for their activation (TPM attestation, step 2 → step 4).
 *
 * Between `POST /v1/device/attestation` and `POST /v1/session` the gateway remembers, per person
 * and challenge nonce, the secret it sealed to the TPM and the attestation key it sealed it for.
 * With several instances the session request may reach another instance than the credential
 * request, so the store is shared (Redis, `gateway/store/redis.ts`); a single instance keeps it in
 * memory. Either way an entry is taken once, lives `lifetimeSeconds`, and one person may hold at
 * most `perUser` at a time, so nobody can fill the store for everyone else.
 */

/** One credential in flight, as plain data (a store may serialise it). */
export interface PendingActivation {
  readonly userId: string;
  /** The sealed secret, base64url. */
  readonly secret: string;
  /** The attestation key's TPM2B_PUBLIC as the client sent it (base64/base64url), already checked. */
  readonly attestationKeyPublic: string;
  readonly ekFingerprint: string;
  readonly ekSubject: string;
  readonly ekIssuer: string;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
}

export type HoldResult =
  | { readonly held: true }
  /** The person already holds `perUser`; the oldest expires in `retryAfterSeconds`. */
  | { readonly held: false; readonly reason: 'user'; readonly inProgress: number; readonly retryAfterSeconds: number }
  /** The whole store is full (memory only). */
  | { readonly held: false; readonly reason: 'full' };

export interface PendingActivationLimits {
  readonly perUser: number;
  /** Seconds since the epoch. */
  readonly now: number;
}

export interface PendingActivationStore {
  /** Keeps `activation` under (user, nonce), replacing one for the same nonce, unless a limit is reached. */
  hold(nonce: string, activation: PendingActivation, limits: PendingActivationLimits): Promise<HoldResult>;
  /** Removes and returns the activation for (user, nonce), expired or not; undefined when there is none. */
  take(userId: string, nonce: string): Promise<PendingActivation | undefined>;
}

/** One instance's pending activations. */
export class InMemoryPendingActivations implements PendingActivationStore {
  /** Per person: nonce → activation. */
  private readonly byUser = new Map<string, Map<string, PendingActivation>>();
  private size = 0;

  constructor(private readonly maxPending = 10_000) {}

  async hold(nonce: string, activation: PendingActivation, limits: PendingActivationLimits): Promise<HoldResult> {
    this.sweep(limits.now);
    const mine = this.byUser.get(activation.userId) ?? new Map<string, PendingActivation>();
    if (!mine.has(nonce)) {
      if (mine.size >= limits.perUser) {
        const oldest = Math.min(...[...mine.values()].map((entry) => entry.expiresAt));
        return {
          held: false,
          reason: 'user',
          inProgress: mine.size,
          retryAfterSeconds: Math.max(1, Math.ceil(oldest - limits.now)),
        };
      }
      if (this.size >= this.maxPending) return { held: false, reason: 'full' };
      this.size += 1;
    }
    mine.set(nonce, activation);
    this.byUser.set(activation.userId, mine);
    return { held: true };
  }

  async take(userId: string, nonce: string): Promise<PendingActivation | undefined> {
    const mine = this.byUser.get(userId);
    const activation = mine?.get(nonce);
    if (!mine || !activation) return undefined;
    mine.delete(nonce);
    this.size -= 1;
    // Stryker disable next-line ConditionalExpression: keeping a person's empty map is memory only: hold() reuses it and the next sweep drops it.
    if (mine.size === 0) this.byUser.delete(userId);
    return activation;
  }

  private sweep(now: number): void {
    for (const [userId, mine] of this.byUser) {
      for (const [nonce, entry] of mine) {
        if (entry.expiresAt < now) {
          mine.delete(nonce);
          this.size -= 1;
        }
      }
      // Stryker disable next-line ConditionalExpression: keeping a person's empty map is memory only: hold() reuses it and the next sweep drops it.
      if (mine.size === 0) this.byUser.delete(userId);
    }
  }
}
