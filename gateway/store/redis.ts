import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DpopReplayCache, ReplayVerdict } from '../auth/dpop';
import type { ChangeBus, ClusterChange } from '../cluster';
import type { ChallengeStore, DeviceChallenge } from '../device/challenges';
import type {
  HoldResult,
  PendingActivation,
  PendingActivationLimits,
  PendingActivationStore,
} from '../device/attestation/pending-activations';
import { QuotaExceeded } from '../limits/quotas';
import type { Subscription } from '../signal';

/** Prefix of every key the gateway writes, so one Redis can serve other things too. */
export const REDIS_PREFIX = 'clearance:';

/**
 * Records `jti` under `KEYS[1]` unless present, counting it in the key's share `KEYS[2]` (a
 * counter that expires with the newest entry). Returns 1 fresh, 0 replay, -1 over the share.
 */
const REMEMBER_JTI = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local count = tonumber(redis.call('GET', KEYS[2]) or '0')
if count >= tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1`;

/**
 * DPoP `jti`s in Redis: a proof used at one instance is refused at every other.
 *
 * Each entry expires on its own when the proof could no longer pass the age check. One device
 * key may hold `maxPerKey` entries (its count expires with its newest entry), so a flooding key
 * is refused alone, as with the in-memory cache; Redis's `maxmemory` bounds the whole set. An
 * error from Redis is an error, never "fresh".
 */
export class RedisReplayCache implements DpopReplayCache {
  constructor(
    private readonly redis: Redis,
    private readonly maxPerKey = 1000,
  ) {}

  async remember(jkt: string, jti: string, expiresAt: number, now: number): Promise<ReplayVerdict> {
    const ttl = Math.max(1, Math.ceil(expiresAt - now));
    const result = (await this.redis.eval(
      REMEMBER_JTI,
      2,
      `${REDIS_PREFIX}dpop:${jkt}:${jti}`,
      `${REDIS_PREFIX}dpop-count:${jkt}`,
      ttl,
      this.maxPerKey,
    )) as number;
    return result === 1 ? 'fresh' : result === 0 ? 'replay' : 'key-full';
  }
}

/**
 * The DPoP nonce secret every instance shares (created by the first one, `SET NX`), so a nonce
 * one instance hands out is accepted by the others. Nonces themselves rotate with time.
 */
export async function sharedNonceSecret(redis: Redis): Promise<Buffer> {
  const key = `${REDIS_PREFIX}dpop:nonce-secret`;
  await redis.set(key, randomBytes(32).toString('base64url'), 'NX');
  const secret = await redis.get(key);
  if (!secret) throw new Error('Redis lost the DPoP nonce secret right after setting it');
  return Buffer.from(secret, 'base64url');
}

/**
 * Device challenges in Redis: issued at one instance, redeemed (once, `GETDEL`) at any.
 *
 * Each user may hold at most `maxPerUser` outstanding challenges, so one caller cannot fill
 * the store.
 */
export class RedisChallengeStore implements ChallengeStore {
  constructor(
    private readonly redis: Redis,
    private readonly lifetimeSeconds = 120,
    private readonly maxPerUser = 10,
  ) {}

  async issue(userId: string): Promise<DeviceChallenge> {
    const counter = `${REDIS_PREFIX}challenges:${userId}`;
    const [[, outstanding]] = (await this.redis.multi().incr(counter).expire(counter, this.lifetimeSeconds).exec()) as [
      [Error | null, number],
      [Error | null, number],
    ];
    if (outstanding > this.maxPerUser) {
      await this.redis.decr(counter);
      throw new QuotaExceeded(
        'user',
        `This account already holds ${this.maxPerUser} unused device challenges; use one or wait for them to expire.`,
        this.lifetimeSeconds,
      );
    }
    const nonce = randomBytes(32).toString('base64url');
    const expiresAt = Math.floor(Date.now() / 1000) + this.lifetimeSeconds;
    await this.redis.set(`${REDIS_PREFIX}challenge:${nonce}`, userId, 'EX', this.lifetimeSeconds);
    return { nonce, expiresAt };
  }

  async consume(nonce: string, userId: string): Promise<boolean> {
    const owner = await this.redis.getdel(`${REDIS_PREFIX}challenge:${nonce}`);
    if (owner === null) return false;
    await this.redis.decr(`${REDIS_PREFIX}challenges:${owner}`);
    return owner === userId;
  }

  async outstanding(userId: string): Promise<number> {
    return Math.max(0, Number((await this.redis.get(`${REDIS_PREFIX}challenges:${userId}`)) ?? 0));
  }
}

/**
 * Holds an activation (`KEYS[1]`, JSON `ARGV[1]`, `ARGV[2]` seconds) and lists it in its person's
 * sorted set (`KEYS[2]`, scored by expiry `ARGV[4]`), unless that person already holds `ARGV[3]`
 * live ones (expired members are dropped first, `ARGV[5]` is now). Replacing the same nonce is
 * not a new one. Returns {1} held, or {0, held, seconds until the oldest expires}.
 */
const HOLD_ACTIVATION = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 0 then
  local held = redis.call('ZCARD', KEYS[2])
  if held >= tonumber(ARGV[3]) then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, held, math.ceil(tonumber(oldest[2]) - tonumber(ARGV[5]))}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {1}`;

/**
 * Credentials waiting for their TPM activation, in Redis: issued at one instance, taken (once,
 * `GETDEL`) at whichever instance the session request reaches. Each entry expires on its own;
 * one person may hold `perUser` at a time (the store's total is bounded by Redis's `maxmemory`).
 */
export class RedisPendingActivations implements PendingActivationStore {
  constructor(private readonly redis: Redis) {}

  async hold(nonce: string, activation: PendingActivation, limits: PendingActivationLimits): Promise<HoldResult> {
    const ttl = Math.max(1, Math.ceil(activation.expiresAt - limits.now));
    const result = (await this.redis.eval(
      HOLD_ACTIVATION,
      2,
      activationKey(activation.userId, nonce),
      `${REDIS_PREFIX}activations:${activation.userId}`,
      JSON.stringify(activation),
      ttl,
      limits.perUser,
      activation.expiresAt,
      limits.now,
    )) as number[];
    if (result[0] === 1) return { held: true };
    return {
      held: false,
      reason: 'user',
      inProgress: Number(result[1]),
      retryAfterSeconds: Math.max(1, Number(result[2])),
    };
  }

  async take(userId: string, nonce: string): Promise<PendingActivation | undefined> {
    const key = activationKey(userId, nonce);
    const [[error, value]] = (await this.redis
      .multi()
      .getdel(key)
      .zrem(`${REDIS_PREFIX}activations:${userId}`, key)
      .exec()) as [[Error | null, string | null], [Error | null, number]];
    if (error) throw error;
    return value === null ? undefined : (JSON.parse(value) as PendingActivation);
  }
}

/** The person's id and the nonce, each encoded, so neither can run into the other. */
function activationKey(userId: string, nonce: string): string {
  return `${REDIS_PREFIX}activation:${encodeURIComponent(userId)}:${encodeURIComponent(nonce)}`;
}

/**
 * Changes fanned out between instances over Redis pub/sub (`clearance:changes`).
 *
 * A message carries the sending instance's id; an instance ignores its own. Pub/sub delivers
 * at most once to instances connected at the time, which is why the hot-path caches also
 * expire on their own (a few seconds) and the stores stay the source of truth.
 */
export class RedisChangeBus implements ChangeBus {
  /** This instance's id in messages. */
  readonly instanceId = randomUUID();
  private readonly listeners = new Set<(change: ClusterChange) => void>();
  private readonly ready: Promise<unknown>;

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel = `${REDIS_PREFIX}changes`,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      let message: { origin?: string; change?: ClusterChange };
      try {
        message = JSON.parse(text) as typeof message;
      } catch (error) {
        this.onError(error);
        return;
      }
      if (message.origin === this.instanceId || !message.change) return;
      for (const listener of [...this.listeners]) {
        try {
          listener(message.change);
        } catch (error) {
          this.onError(error);
        }
      }
    });
    this.ready = this.subscriber.subscribe(this.channel);
  }

  /** Resolves once the subscription is in place. */
  async started(): Promise<void> {
    await this.ready;
  }

  async publish(change: ClusterChange): Promise<void> {
    await this.publisher.publish(this.channel, JSON.stringify({ origin: this.instanceId, change }));
  }

  subscribe(listener: (change: ClusterChange) => void): Subscription {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }
}
