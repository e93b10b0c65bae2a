import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {} from '@fastify/rate-limit';

/** A count allowed per time window. */
export interface RateWindow {
  readonly max: number;
  readonly windowMs: number;
}

/**
 * Limits that keep one caller from starving the others.
 *
 * Every bound is per principal: client address before authentication, then user and device
 * key, so a flood is refused for its source alone.
 */
export interface LimitSettings {
  /** Requests per client address, before authentication (health and discovery excluded). */
  readonly perAddress: RateWindow;
  /** Authenticated requests per user (identity token or gateway token). */
  readonly perUser: RateWindow;
  /** Authenticated requests per device key (DPoP). */
  readonly perDevice: RateWindow;
  /** Device challenges one user may hold unused at once. */
  readonly challengesPerUser: number;
  /** DPoP proof ids remembered per device key (the replay cache share of one key). */
  readonly replayEntriesPerDevice: number;
  /** Largest body parsed on any route before its caller is authenticated. */
  readonly smallBodyBytes: number;
  /** Largest chat completion request body; its caller is authenticated before it is read. */
  readonly completionBodyBytes: number;
}

/** The limits used when none are configured. */
export const DEFAULT_LIMITS: LimitSettings = {
  perAddress: { max: 1200, windowMs: 60_000 },
  perUser: { max: 600, windowMs: 60_000 },
  perDevice: { max: 300, windowMs: 60_000 },
  challengesPerUser: 10,
  replayEntriesPerDevice: 1000,
  smallBodyBytes: 64 * 1024,
  completionBodyBytes: 1024 * 1024,
};

/** Which principal a refused request was counted against. */
export type QuotaScope = 'address' | 'user' | 'device' | 'global';

/** A request over a quota; answered 429 with `Retry-After`. */
export class QuotaExceeded extends Error {
  constructor(
    readonly scope: QuotaScope,
    readonly detail: string,
    readonly retryAfterSeconds: number,
  ) {
    super(detail);
    this.name = 'QuotaExceeded';
  }
}

/** Who an authenticated request is counted against. */
export interface RequestPrincipal {
  readonly userId: string;
  /** Device key thumbprint, for DPoP-authenticated requests. */
  readonly jkt?: string;
}

/**
 * Per-user and per-device request rates, counted with @fastify/rate-limit's store (in memory,
 * or Redis when the plugin is registered with one) after the caller is authenticated.
 */
export class PrincipalRateLimits {
  private readonly keys = new WeakMap<object, string>();
  private readonly user: ReturnType<FastifyInstance['createRateLimit']>;
  private readonly device: ReturnType<FastifyInstance['createRateLimit']>;

  constructor(app: FastifyInstance, settings: LimitSettings) {
    const keyGenerator = (request: FastifyRequest) => this.keys.get(request) ?? 'unknown';
    this.user = app.createRateLimit({
      max: settings.perUser.max,
      timeWindow: settings.perUser.windowMs,
      keyGenerator,
    });
    this.device = app.createRateLimit({
      max: settings.perDevice.max,
      timeWindow: settings.perDevice.windowMs,
      keyGenerator,
    });
  }

  /** Counts one request; throws `QuotaExceeded` when the user or the device key is over its rate. */
  async check(request: FastifyRequest, principal: RequestPrincipal): Promise<void> {
    this.keys.set(request, `user:${principal.userId}`);
    const byUser = await this.user(request);
    if (!byUser.isAllowed && byUser.isExceeded) {
      throw new QuotaExceeded(
        'user',
        `Too many requests for this account; retry in ${byUser.ttlInSeconds} s.`,
        byUser.ttlInSeconds,
      );
    }
    if (principal.jkt === undefined) return;
    // Per person on the device: people sharing a laptop share its device key, and one must not starve the other.
    this.keys.set(request, `device:${principal.userId}\u0000${principal.jkt}`);
    const byDevice = await this.device(request);
    if (!byDevice.isAllowed && byDevice.isExceeded) {
      throw new QuotaExceeded(
        'device',
        `Too many requests from this device; retry in ${byDevice.ttlInSeconds} s.`,
        byDevice.ttlInSeconds,
      );
    }
  }
}
