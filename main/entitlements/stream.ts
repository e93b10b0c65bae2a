import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** A fetch that adds the gateway session's DPoP authorization; takes a path on the gateway. */
export type AuthorizedFetch = (path: string, init?: RequestInit) => Promise<Response>;

/** How long to wait between reconnection attempts. */
export interface ReconnectPolicy {
  /** The first delay (default 1 s); each failure doubles it. */
  readonly initialMs: number;
  /** The longest delay (default 30 s). */
  readonly maxMs: number;
}

/**
 * The delay before reconnection attempt `attempt` (0-based): exponential, capped, with jitter.
 *
 * "Equal jitter": half the delay is fixed, half random, so many clients cut off together do not
 * come back together, and none comes back sooner than half its step.
 */
export function reconnectDelay(attempt: number, policy: ReconnectPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Options for {@link GatewayEventStream}. */
export interface GatewayEventStreamOptions {
  readonly fetch: AuthorizedFetch;
  /** Path of the stream on the gateway (default `/v1/events`). */
  readonly path?: string;
  readonly reconnect: ReconnectPolicy;
  /** Reconnect when nothing (not even a comment) arrives for this long (default 75 s): a dead peer sends no FIN. */
  readonly idleTimeoutMs?: number;
  readonly random?: () => number;
  /** The stream is open (the gateway answered 200 with an event stream). */
  readonly onOpen: () => void;
  readonly onEvent: (event: EventSourceMessage) => void;
  /**
   * The stream broke or could not be (re)opened; a reconnection is already scheduled.
   *
   * Not called when an open stream ends cleanly and the next connection succeeds.
   */
  readonly onDown: (error: Error) => void;
  readonly log?: (message: string, error?: unknown) => void;
}

/**
 * The gateway's Server-Sent Events stream, kept open: reconnects with backoff and resumes with `Last-Event-ID`.
 *
 * Uses the authorized fetch rather than `EventSource` because the stream needs a DPoP proof.
 */
export class GatewayEventStream {
  private running = false;
  private controller: AbortController | undefined;
  private wake: (() => void) | undefined;
  private lastId: string | undefined;
  private open = false;
  private serverRetryMs: number | undefined;
  /** Logged once per outage, not once per attempt. */
  private reportedDown = false;

  constructor(private readonly options: GatewayEventStreamOptions) {}

  /** The id of the last event received, sent as `Last-Event-ID` on reconnection. */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  get connected(): boolean {
    return this.open;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.run();
  }

  stop(): void {
    this.running = false;
    this.controller?.abort();
    this.wake?.();
  }

  /** Skips the current backoff wait and tries to connect now (e.g. the network came back). */
  reconnectNow(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      try {
        await this.connectOnce(() => {
          attempt = 0;
        });
        // Stryker disable next-line ConditionalExpression: stop() aborts the stream, so connectOnce throws then; if it ended cleanly just before, the loop only waits once more and ends at the `while`, with no request and no report.
        if (!this.running) break;
        // connectOnce returns only when an open stream ended cleanly (the gateway rotating it when the
        // access token expires; every failure, before or after opening, throws): reconnect quietly,
        // only a failed reconnection counts as the stream being down.
        this.open = false;
      } catch (error) {
        if (!this.running) break;
        this.markDown(error instanceof Error ? error : new Error(String(error)));
      }
      const backoff = reconnectDelay(attempt, this.options.reconnect, this.options.random);
      const delay = Math.max(backoff, Math.min(this.serverRetryMs ?? 0, this.options.reconnect.maxMs));
      attempt += 1;
      await this.sleep(delay);
    }
    this.open = false;
  }

  private markDown(error: Error): void {
    this.open = false;
    if (!this.reportedDown) this.options.log?.(`Event stream down: ${error.message}`);
    this.reportedDown = true;
    this.options.onDown(error);
  }

  private async connectOnce(onOpened: () => void): Promise<void> {
    const controller = new AbortController();
    this.controller = controller;
    const idleMs = this.options.idleTimeoutMs ?? 75_000;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const resetIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () => controller.abort(new Error(`No data on the event stream for ${idleMs} ms.`)),
        idleMs,
      );
      // Stryker disable next-line OptionalChaining: Node's timers (the main process's) always have unref.
      idleTimer.unref?.();
    };
    resetIdle();
    try {
      const headers: Record<string, string> = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' };
      if (this.lastId !== undefined) headers['Last-Event-ID'] = this.lastId;
      const response = await this.options.fetch(this.options.path ?? '/v1/events', {
        headers,
        signal: controller.signal,
      });
      const type = response.headers.get('content-type') ?? '';
      if (!response.ok || !type.toLowerCase().startsWith('text/event-stream') || !response.body) {
        await response.body?.cancel().catch(() => undefined);
        throw new Error(`The gateway's event stream answered HTTP ${response.status} (${type || 'no content type'}).`);
      }
      const parser = createParser({
        onEvent: (event) => {
          if (event.id !== undefined) this.lastId = event.id;
          this.options.onEvent(event);
        },
        onRetry: (ms) => {
          this.serverRetryMs = ms;
        },
      });
      this.open = true;
      this.reportedDown = false;
      onOpened();
      this.options.onOpen();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          resetIdle();
          parser.feed(value);
        }
        // Stryker disable BlockStatement,CallExpression: the reader is the body's only consumer and is dropped with it; releasing its lock changes nothing anyone reads.
      } finally {
        reader.releaseLock();
      }
      // Stryker restore BlockStatement,CallExpression
    } catch (error) {
      const reason: unknown = controller.signal.aborted ? (controller.signal.reason ?? error) : error;
      throw reason instanceof Error ? reason : new Error(String(reason));
    } finally {
      // Stryker disable next-line CallExpression: a timer left armed can only abort this connection's controller, which the next line has aborted already (and it is unref'd).
      clearTimeout(idleTimer);
      if (!controller.signal.aborted) controller.abort();
      // Stryker disable next-line ConditionalExpression,EqualityOperator: one connection at a time, so the field is always this controller; keeping it only lets stop() abort an already aborted controller, which does nothing.
      if (this.controller === controller) this.controller = undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      // Stryker disable next-line OptionalChaining: Node's timers (the main process's) always have unref.
      timer.unref?.();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}
