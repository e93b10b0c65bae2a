import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Sizes the gateway reports as `clearance_cache_entries{cache=…}`. */
export type CacheSizes = () => Readonly<Record<string, number | undefined>>;

/** Latency buckets in seconds: fine below 10 ms, where the gateway's own overhead lives. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The gateway's Prometheus metrics (`GET /metrics`), one registry per gateway instance so
 * several instances in one process (tests) keep their own counts.
 */
export class GatewayMetrics {
  /** The registry `/metrics` renders. */
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status' | 'decision'>;
  private readonly duration: Histogram<'route' | 'method' | 'decision'>;
  private readonly upstream: Histogram<'outcome'>;
  private readonly reloads: Counter<'kind' | 'result'>;
  private readonly fanout: Counter<'kind' | 'origin'>;
  private streams = 0;

  constructor(cacheSizes: CacheSizes, defaults = true) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'clearance_http_requests_total',
      help: 'HTTP requests answered, by route, method, status and access decision (none when no decision was made).',
      labelNames: ['route', 'method', 'status', 'decision'],
      registers,
    });
    this.duration = new Histogram({
      name: 'clearance_http_request_duration_seconds',
      help: 'Time from request to the end of the response, by route, method and access decision.',
      labelNames: ['route', 'method', 'decision'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstream = new Histogram({
      name: 'clearance_upstream_first_byte_seconds',
      help: 'Time from sending a completion upstream to its first event (or failure), by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.reloads = new Counter({
      name: 'clearance_reloads_total',
      help: 'Policy and catalog reloads, by result (ok, unchanged, rejected).',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.fanout = new Counter({
      name: 'clearance_fanout_messages_total',
      help: 'Changes fanned out between instances (policy, revocation, suspension), by origin (local, remote).',
      labelNames: ['kind', 'origin'],
      registers,
    });
    const streams = () => this.streams;
    new Gauge({
      name: 'clearance_event_subscribers',
      help: 'Open GET /v1/events streams on this instance.',
      registers,
      collect() {
        this.set(streams());
      },
    });
    new Gauge({
      name: 'clearance_cache_entries',
      help: 'Entries held per in-memory cache (decisions, session tokens, device keys, enrolments, replay).',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, size] of Object.entries(cacheSizes())) if (size !== undefined) this.set({ cache }, size);
      },
    });
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'clearance_gateway_' });
  }

  /**
   * The counter and histogram children of each label set seen, so a request does not pay for
   * prom-client hashing its labels (the sets are few: routes × methods × statuses × decisions).
   */
  private readonly requestChildren = new Map<
    string,
    { readonly count: { inc(): void }; readonly duration: { observe(value: number): void } }
  >();
  private readonly upstreamChildren = new Map<string, { observe(value: number): void }>();

  /** Counts one answered request. */
  request(route: string, method: string, status: number, decision: string, seconds: number): void {
    const key = `${route} ${method} ${status} ${decision}`;
    let children = this.requestChildren.get(key);
    if (!children) {
      children = {
        count: this.requests.labels({ route, method, status: String(status), decision }),
        duration: this.duration.labels({ route, method, decision }),
      };
      this.requestChildren.set(key, children);
    }
    children.count.inc();
    children.duration.observe(seconds);
  }

  /** Records the time to an upstream's first event. */
  upstreamFirstByte(outcome: 'ok' | 'error', seconds: number): void {
    let child = this.upstreamChildren.get(outcome);
    if (!child) {
      child = this.upstream.labels({ outcome });
      this.upstreamChildren.set(outcome, child);
    }
    child.observe(seconds);
  }

  /** Counts a reload. */
  reload(kind: 'policy' | 'catalog', result: 'ok' | 'unchanged' | 'rejected'): void {
    this.reloads.inc({ kind, result });
  }

  /** Counts a change fanned out to or received from other instances. */
  fannedOut(kind: string, origin: 'local' | 'remote'): void {
    this.fanout.inc({ kind, origin });
  }

  /** An events stream opened (+1) or closed (-1). */
  streamDelta(delta: 1 | -1): void {
    this.streams += delta;
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The exposition's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
