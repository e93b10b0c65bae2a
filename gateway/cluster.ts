import { Redis } from 'ioredis';
import { DEFAULT_LIMITS, type LimitSettings } from './limits/quotas';
import type { GatewayOptions } from './server';
import type { Subscription } from './signal';
import { PostgresEnrolmentStore } from './device/attestation/postgres-enrolments';
import { openPostgresStores } from './store/postgres';
import {
  RedisChallengeStore,
  RedisChangeBus,
  RedisPendingActivations,
  RedisReplayCache,
  sharedNonceSecret,
} from './store/redis';

/** A change one instance made that every other instance must apply at once. */
export type ClusterChange =
  | { readonly kind: 'revocation'; readonly userId: string; readonly jkt: string; readonly detail: string }
  | { readonly kind: 'suspension'; readonly userId: string; readonly decisionId: string }
  | { readonly kind: 'resumption'; readonly userId: string }
  | { readonly kind: 'policy'; readonly digest: string }
  | { readonly kind: 'catalog'; readonly revision: string };

/** Carries `ClusterChange`s between instances; a sender never receives its own. */
export interface ChangeBus {
  publish(change: ClusterChange): Promise<void>;
  subscribe(listener: (change: ClusterChange) => void): Subscription;
}

/** Where the shared state lives. */
export interface SharedStateOptions {
  /** `postgres://…`: devices, device enrolments, suspensions, entitlement versions and the audit chain. */
  readonly postgresUrl: string;
  /** `redis://…`: DPoP replay set and nonce secret, device challenges, rate-limit counters, change fan-out. */
  readonly redisUrl: string;
  /** The per-principal shares (`limits` of `GatewayOptions`); defaults in `DEFAULT_LIMITS`. */
  readonly limits?: Partial<LimitSettings>;
  readonly log?: (line: string) => void;
}

/** Shared state, ready to spread into `GatewayOptions`, and how to let go of it. */
export interface SharedState {
  readonly options: Pick<GatewayOptions, 'stores' | 'quotaStores' | 'bus'> & {
    readonly dpop: NonNullable<GatewayOptions['dpop']>;
  };
  close(): Promise<void>;
}

/**
 * Connects one gateway instance to the PostgreSQL and Redis every instance shares.
 *
 * Call once per instance (each gets its own pools and subscriber connection), then
 * `startGateway({ ...settings, ...shared.options })`.
 */
export async function connectSharedState(settings: SharedStateOptions): Promise<SharedState> {
  const log = settings.log ?? (() => {});
  const limits: LimitSettings = { ...DEFAULT_LIMITS, ...settings.limits };
  const postgres = await openPostgresStores({ connectionString: settings.postgresUrl });
  const redisOptions = { maxRetriesPerRequest: 2, enableOfflineQueue: true } as const;
  // Commands issued in one turn of the event loop (replay checks and rate-limit counters of
  // concurrent requests) go out in one write: a socket write per command was the largest item
  // of an instance's CPU profile on Redis. The subscriber connection stays as it is.
  const redis = new Redis(settings.redisUrl, { ...redisOptions, enableAutoPipelining: true });
  const subscriber = new Redis(settings.redisUrl, redisOptions);
  for (const connection of [redis, subscriber]) {
    connection.on('error', (error: Error) => log(`redis: ${error.message}`));
  }
  try {
    const nonceSecret = await sharedNonceSecret(redis);
    const bus = new RedisChangeBus(redis, subscriber, undefined, (error) =>
      log(`change fan-out: ${(error as Error).message}`),
    );
    await bus.started();
    const enrolments = await PostgresEnrolmentStore.open(postgres.pool);
    return {
      options: {
        stores: {
          devices: postgres.devices,
          audit: postgres.audit,
          versions: postgres.versions,
          suspensions: postgres.suspensions,
          enrolments,
        },
        quotaStores: {
          challenges: new RedisChallengeStore(redis, 120, limits.challengesPerUser),
          dpopReplay: new RedisReplayCache(redis, limits.replayEntriesPerDevice),
          rateLimitRedis: redis,
          activations: new RedisPendingActivations(redis),
        },
        bus,
        dpop: { nonceSecret },
      },
      async close() {
        await postgres.close();
        subscriber.disconnect();
        redis.disconnect();
      },
    };
  } catch (error) {
    await postgres.close();
    subscriber.disconnect();
    redis.disconnect();
    throw error;
  }
}
