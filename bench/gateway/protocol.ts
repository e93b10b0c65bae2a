import type { SharedStateOptions } from '../../gateway/cluster';
import type { GatewayOptions } from '../../gateway/server';

/** What one benchmark process runs. */
export type ChildRole =
  | { readonly kind: 'upstream' }
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
  | { readonly kind: 'stop' };

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
  | { readonly kind: 'stopped' }
  | { readonly kind: 'profiled' }
  | { readonly kind: 'failed'; readonly message: string };
