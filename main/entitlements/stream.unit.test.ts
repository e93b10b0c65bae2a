import type { EventSourceMessage } from 'eventsource-parser';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GatewayEventStream, reconnectDelay, type GatewayEventStreamOptions } from './stream';

// The event stream against a scripted fetch on fake timers: which requests it makes, when, and what it
// reports, without a network or real waiting.

interface Call {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
}

/** One answer the scripted gateway gives; `open` answers a live event stream the test writes to. */
type Answer = { status?: number; type?: string | null; body?: 'none' | 'stream' } | Error;

class ScriptedGateway {
  readonly calls: Call[] = [];
  readonly answers: Answer[] = [];
  /** Writes to the last opened stream; undefined while none is open. */
  writer: ReadableStreamDefaultController<Uint8Array> | undefined;
  cancelled = 0;

  readonly fetch = async (path: string, init?: RequestInit): Promise<Response> => {
    const signal = init!.signal!;
    this.calls.push({ path, headers: { ...(init!.headers as Record<string, string>) }, signal });
    const answer = this.answers.shift() ?? { body: 'stream' };
    if (answer instanceof Error) throw answer;
    const status = answer.status ?? 200;
    const headers = new Headers();
    const type = answer.type === undefined ? 'text/event-stream' : answer.type;
    if (type !== null) headers.set('content-type', type);
    if (answer.body === 'none') return new Response(null, { status, headers });
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.writer = controller;
        signal.addEventListener('abort', () => {
          if (this.writer === controller) this.writer = undefined;
          try {
            controller.error(signal.reason);
          } catch {
            // already closed
          }
        });
      },
      cancel: () => {
        this.cancelled += 1;
      },
    });
    return new Response(body, { status, headers });
  };

  send(text: string): void {
    this.writer!.enqueue(new TextEncoder().encode(text));
  }

  end(): void {
    const writer = this.writer!;
    this.writer = undefined;
    writer.close();
  }
}

let gateway: ScriptedGateway;
let stream: GatewayEventStream | undefined;
let events: EventSourceMessage[];
let downs: string[];
let logs: string[];
let opens: number;

function makeStream(overrides: Partial<GatewayEventStreamOptions> = {}): GatewayEventStream {
  stream = new GatewayEventStream({
    fetch: gateway.fetch,
    reconnect: { initialMs: 1000, maxMs: 8000 },
    random: () => 1,
    onOpen: () => {
      opens += 1;
    },
    onEvent: (event) => events.push(event),
    onDown: (error) => downs.push(error.message),
    log: (message) => logs.push(message),
    ...overrides,
  });
  return stream;
}

/** Lets pending promises settle without moving the clock. */
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  gateway = new ScriptedGateway();
  events = [];
  downs = [];
  logs = [];
  opens = 0;
});

afterEach(() => {
  stream?.stop();
  stream = undefined;
  vi.useRealTimers();
});

describe('reconnectDelay at the edges', () => {
  it('stops doubling after 30 attempts, so a zero first delay stays zero however long the outage', () => {
    expect(reconnectDelay(2000, { initialMs: 0, maxMs: 100 }, () => 1)).toBe(0);
    expect(reconnectDelay(31, { initialMs: 1, maxMs: 2 ** 40 }, () => 1)).toBe(2 ** 30);
  });

  it('is half the step plus the random share of the other half', () => {
    expect(reconnectDelay(1, { initialMs: 1000, maxMs: 30_000 }, () => 0.5)).toBe(1500);
  });
});

describe('GatewayEventStream on a scripted gateway', () => {
  it('asks for the event stream with the headers an event stream needs, at /v1/events by default', async () => {
    makeStream().start();
    await settle();
    expect(gateway.calls).toHaveLength(1);
    expect(gateway.calls[0]).toMatchObject({
      path: '/v1/events',
      headers: { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' },
    });
    expect(gateway.calls[0]!.headers).not.toHaveProperty('Last-Event-ID');
    expect(stream!.connected).toBe(true);
    expect(opens).toBe(1);
  });

  it('uses the path it is given', async () => {
    makeStream({ path: '/v2/stream' }).start();
    await settle();
    expect(gateway.calls.map((call) => call.path)).toEqual(['/v2/stream']);
  });

  it('starts once however often start() is called', async () => {
    const s = makeStream();
    s.start();
    s.start();
    await settle();
    expect(gateway.calls).toHaveLength(1);
  });

  it('passes on events, and resumes after the last id it saw (an event without an id keeps it)', async () => {
    makeStream().start();
    await settle();
    gateway.send('event: entitlements.changed\nid: 7\ndata: {"ver":2}\n\n');
    gateway.send('event: ping\ndata: x\n\n');
    await settle();
    expect(events.map((event) => [event.event, event.id, event.data])).toEqual([
      ['entitlements.changed', '7', '{"ver":2}'],
      ['ping', undefined, 'x'],
    ]);
    expect(stream!.lastEventId).toBe('7');
    gateway.end();
    await settle();
    await vi.advanceTimersByTimeAsync(1000);
    expect(gateway.calls).toHaveLength(2);
    expect(gateway.calls[1]!.headers['Last-Event-ID']).toBe('7');
  });

  it('reconnects quietly after a clean end, after the first step of the backoff', async () => {
    makeStream().start();
    await settle();
    gateway.end();
    await settle();
    expect(stream!.connected).toBe(false);
    await vi.advanceTimersByTimeAsync(999);
    expect(gateway.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(gateway.calls).toHaveLength(2);
    expect(stream!.connected).toBe(true);
    expect(downs).toEqual([]);
    expect(logs).toEqual([]);
  });

  it('counts a stream closed before it opened as down', async () => {
    gateway.answers.push({ status: 503, type: 'application/problem+json', body: 'none' });
    makeStream().start();
    await settle();
    expect(downs).toEqual(["The gateway's event stream answered HTTP 503 (application/problem+json)."]);
    expect(stream!.connected).toBe(false);
  });

  it('refuses an answer that is not an event stream, and cancels its body', async () => {
    gateway.answers.push({ status: 200, type: 'application/json' }, { status: 200, type: null });
    makeStream().start();
    await settle();
    expect(downs).toEqual(["The gateway's event stream answered HTTP 200 (application/json)."]);
    expect(gateway.cancelled).toBe(1);
    expect(opens).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(downs.at(-1)).toBe("The gateway's event stream answered HTTP 200 (no content type).");
    expect(opens).toBe(0);
  });

  it('accepts the content type in any case and with parameters', async () => {
    gateway.answers.push({ type: 'Text/Event-Stream; charset=utf-8' });
    makeStream().start();
    await settle();
    expect(opens).toBe(1);
    expect(downs).toEqual([]);
  });

  it('refuses a 200 event stream without a body', async () => {
    gateway.answers.push({ status: 200, body: 'none' });
    makeStream().start();
    await settle();
    expect(downs).toEqual(["The gateway's event stream answered HTTP 200 (text/event-stream)."]);
    expect(opens).toBe(0);
  });

  it('doubles the wait after each failure, logs the outage once, and starts again from the first step once open', async () => {
    const refused = { status: 503, body: 'none' } as const;
    gateway.answers.push(refused, refused, refused);
    makeStream().start();
    await settle();
    expect(gateway.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(gateway.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1999);
    expect(gateway.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(gateway.calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(4000);
    expect(gateway.calls).toHaveLength(4);
    expect(stream!.connected).toBe(true);
    expect(downs).toHaveLength(3);
    expect(logs).toEqual(["Event stream down: The gateway's event stream answered HTTP 503 (text/event-stream)."]);

    // Open again: the next outage is logged again, and the backoff starts from its first step.
    gateway.answers.push(new Error('connection reset'));
    gateway.writer!.error(new Error('socket hang up'));
    await settle();
    expect(downs.at(-1)).toBe('socket hang up');
    expect(logs.at(-1)).toBe('Event stream down: socket hang up');
    await vi.advanceTimersByTimeAsync(1000);
    expect(gateway.calls).toHaveLength(5);
    expect(downs.at(-1)).toBe('connection reset');
    expect(logs).toHaveLength(2);
  });

  it('waits at least the retry interval the gateway asks for, up to the longest delay', async () => {
    makeStream().start();
    await settle();
    gateway.send('retry: 3000\n\n');
    gateway.end();
    await settle();
    await vi.advanceTimersByTimeAsync(2999);
    expect(gateway.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(gateway.calls).toHaveLength(2);

    gateway.send('retry: 60000\n\n');
    gateway.end();
    await settle();
    await vi.advanceTimersByTimeAsync(7999);
    expect(gateway.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(gateway.calls).toHaveLength(3);
  });

  it('reconnects when nothing arrives for the idle timeout, each arrival starting it again', async () => {
    makeStream({ idleTimeoutMs: 500 }).start();
    await settle();
    await vi.advanceTimersByTimeAsync(400);
    gateway.send(': keep-alive\n\n');
    await vi.advanceTimersByTimeAsync(400);
    expect(downs).toEqual([]);
    expect(gateway.calls[0]!.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(downs).toEqual(['No data on the event stream for 500 ms.']);
    expect(gateway.calls[0]!.signal.aborted).toBe(true);
    expect(stream!.connected).toBe(false);
  });

  it('uses a 75 s idle timeout by default', async () => {
    makeStream().start();
    await settle();
    await vi.advanceTimersByTimeAsync(74_999);
    expect(downs).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(downs).toEqual(['No data on the event stream for 75000 ms.']);
  });

  it('reports a failure that is not an Error in words', async () => {
    const s = makeStream({
      fetch: () => Promise.reject('offline'),
    });
    s.start();
    await settle();
    expect(downs).toEqual(['offline']);
  });

  it('reconnects at once when asked, without waiting out the backoff', async () => {
    gateway.answers.push({ status: 503, body: 'none' });
    makeStream({ reconnect: { initialMs: 60_000, maxMs: 60_000 } }).start();
    await settle();
    expect(gateway.calls).toHaveLength(1);
    stream!.reconnectNow();
    await settle();
    expect(gateway.calls).toHaveLength(2);
    expect(stream!.connected).toBe(true);
  });

  it('stops for good: the open request is aborted, nothing more is reported or requested', async () => {
    makeStream().start();
    await settle();
    stream!.stop();
    await settle();
    expect(gateway.calls[0]!.signal.aborted).toBe(true);
    expect(stream!.connected).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gateway.calls).toHaveLength(1);
    expect(downs).toEqual([]);
  });

  it('stops during a backoff wait without another attempt', async () => {
    gateway.answers.push({ status: 503, body: 'none' });
    makeStream().start();
    await settle();
    stream!.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gateway.calls).toHaveLength(1);
  });

  it('stops while a request is under way without reporting it down', async () => {
    let release: ((response: Response) => void) | undefined;
    const s = makeStream({
      fetch: (_path, init) =>
        new Promise<Response>((resolve, reject) => {
          release = resolve;
          init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason));
        }),
    });
    s.start();
    await settle();
    s.stop();
    await settle();
    expect(release).toBeDefined();
    expect(downs).toEqual([]);
    expect(logs).toEqual([]);
  });
  it('is not connected before it starts', () => {
    expect(makeStream().connected).toBe(false);
  });

  it('refuses an error status even when it comes as an event stream, and cancels its body', async () => {
    gateway.answers.push({ status: 503 });
    makeStream().start();
    await settle();
    expect(downs).toEqual(["The gateway's event stream answered HTTP 503 (text/event-stream)."]);
    expect(gateway.cancelled).toBe(1);
    expect(opens).toBe(0);
  });

  it('reports why it gave up on a silent stream, whatever error the aborted fetch rejects with', async () => {
    makeStream({
      idleTimeoutMs: 500,
      fetch: (_path, init) =>
        new Promise<Response>((_resolve, reject) => {
          init!.signal!.addEventListener('abort', () =>
            reject(new DOMException('This operation was aborted', 'AbortError')),
          );
        }),
    }).start();
    await settle();
    await vi.advanceTimersByTimeAsync(500);
    expect(downs).toEqual(['No data on the event stream for 500 ms.']);
  });

  it('closes the connection it gives up on when handling an event fails, before reconnecting', async () => {
    makeStream({
      onEvent: () => {
        throw new Error('listener failed');
      },
    }).start();
    await settle();
    gateway.send('event: ping\ndata: x\n\n');
    await settle();
    expect(downs).toEqual(['listener failed']);
    expect(gateway.calls[0]!.signal.aborted).toBe(true);
  });
});
