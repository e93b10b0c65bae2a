import type { SharedStateOptions } from '../../gateway/cluster';
import type { GatewayOptions } from '../../gateway/server';

/** What one benchmark process runs. */
export type ChildRole =
  | { readonly kind: 'upstream' }
  /** The fan-out's "other requests": chat calls from their own process, away from the 1,000 streams. */
  | { readonly kind: 'probe' }
  | {
      readonly kind: 'gateway';
      /** Serializable gateway options (no functions); the child adds a silent log. */
      readonly options: Omit<GatewayOptions, 'log' | 'requestLog' | 'stores' | 'quotaStores' | 'bus'>;
      /** PostgreSQL and Redis shared with the other instances. */
      readonly shared?: Pick<SharedStateOptions, 'postgresUrl' | 'redisUrl' | 'limits'>;
    };

/** A message from the benchmark runner to a child. */
export type ChildCommand =
  | { readonly kind: 'start'; readonly role: ChildRole }
  | { readonly kind: 'cpu' }
  /** Starts a V8 CPU profile of this process (`BENCH_GATEWAY_PROFILE`). */
  | { readonly kind: 'profile-start' }
  /** Stops it and writes it to `path`. */
  | { readonly kind: 'profile-stop'; readonly path: string }
  | { readonly kind: 'reload' }
  | {
      readonly kind: 'probe-start';
      /** Gateway URL (also the proofs' `htu` origin). */
      readonly url: string;
      /** One loop per session, each calling as soon as the previous call was answered. */
      readonly sessions: readonly ProbeSession[];
    }
  | { readonly kind: 'probe-stop' }
  | { readonly kind: 'stop' };

/** A signed-in benchmark user as a probe process gets it (the device key as a private JWK). */
export interface ProbeSession {
  readonly userId: string;
  readonly token: string;
  readonly ath: string;
  readonly jwk: Record<string, unknown>;
  readonly privateJwk: Record<string, unknown>;
}

/** One probe call: start and end as `performance.timeOrigin + performance.now()` (comparable across processes). */
export interface ProbeCall {
  readonly at: number;
  readonly end: number;
}

/** A child's answer. */
export type ChildReply =
  | { readonly kind: 'started'; readonly url: string; readonly adminToken?: string }
  | { readonly kind: 'cpu'; readonly mainThreadMicros: number; readonly processMicros: number }
  | {
      readonly kind: 'reloaded';
      readonly ok: boolean;
      /** Reload and fan-out, as the gateway sees them. */
      readonly ms: number;
      /** What ran on the gateway's event loop before the reload first yielded. */
      readonly syncMs: number;
      /** Reading and validating the candidate set, wherever it ran. */
      readonly validateMs: number;
      /** Longest time the event loop was held from the reload call to the end of the fan-out. */
      readonly maxStallMs: number;
    }
  | { readonly kind: 'probing' }
  | {
      readonly kind: 'probes';
      readonly calls: readonly ProbeCall[];
      readonly failures: Readonly<Record<string, number>>;
    }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'profiled' }
  | { readonly kind: 'failed'; readonly message: string };
