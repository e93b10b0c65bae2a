import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { UpstreamError } from './upstream';

/** One Server-Sent Event as an upstream sent it. */
export interface UpstreamSseEvent {
  readonly event: string | undefined;
  readonly data: string;
}

/** Limits of one upstream event stream. */
export interface SseReaderLimits {
  /** Longest quiet time while the gateway waits for the next piece. */
  readonly idleMs: number;
  /** Largest line and largest event (its data), in bytes (UTF-16 units, an upper bound for ASCII JSON). */
  readonly maxEventBytes: number;
}

/**
 * Reads Server-Sent Events from an upstream body, pulling the next piece only when the
 * previous events have been consumed, so a slow client slows the upstream instead of
 * filling the gateway's memory.
 *
 * One idle timer per stream, refreshed on every piece and ignored while the consumer holds an
 * event: a quiet upstream fails with 504. A line or an event larger than `maxEventBytes` fails
 * with 502 before more of it is buffered.
 */
export async function* readServerSentEvents(
  what: string,
  body: Readable,
  limits: SseReaderLimits,
  signal: AbortSignal,
): AsyncGenerator<UpstreamSseEvent> {
  for await (const batch of readServerSentEventBatches(what, body, limits, signal)) yield* batch;
}

/**
 * `readServerSentEvents`, one array per piece of the body: the events that piece completed.
 * One asynchronous step per piece instead of one per event (a whole short answer often comes
 * in one piece); the next piece is still read only once the consumer asks for the next batch.
 */
export async function* readServerSentEventBatches(
  what: string,
  body: Readable,
  limits: SseReaderLimits,
  signal: AbortSignal,
): AsyncGenerator<UpstreamSseEvent[]> {
  let waiting = true;
  const timer = setTimeout(function onIdle() {
    if (!waiting) {
      timer.refresh();
      return;
    }
    body.destroy(new UpstreamError(504, `${what} stopped sending for ${limits.idleMs} ms`));
  }, limits.idleMs);
  const onAbort = () => body.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  const decoder = new StringDecoder('utf8');
  let partial = '';
  let data: string[] = [];
  let dataSize = 0;
  let event: string | undefined;
  const tooLarge = (what2: string) =>
    new UpstreamError(
      502,
      `${what} sent ${what2} larger than the gateway's limit of ${limits.maxEventBytes} bytes`,
      `${what} sent ${what2} larger than ${limits.maxEventBytes} bytes`,
    );
  /** Adds the events `text` completes to `out`. */
  function lines(text: string, out: UpstreamSseEvent[]): void {
    partial += text;
    if (partial.includes('\r')) {
      // CR LF and lone CR end lines too; a CR at the very end may be the first half of CR LF.
      const held = partial.endsWith('\r');
      partial = `${(held ? partial.slice(0, -1) : partial).replace(/\r\n?/g, '\n')}${held ? '\r' : ''}`;
    }
    let start = 0;
    for (;;) {
      const end = partial.indexOf('\n', start);
      if (end === -1) break;
      const line = partial.slice(start, end);
      start = end + 1;
      if (line === '') {
        if (data.length > 0) out.push({ event, data: data.join('\n') });
        data = [];
        dataSize = 0;
        event = undefined;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') {
        dataSize += value.length + 1;
        if (dataSize > limits.maxEventBytes) throw tooLarge('an event');
        data.push(value);
      } else if (field === 'event') {
        event = value;
      }
    }
    partial = partial.slice(start);
    if (partial.length > limits.maxEventBytes) throw tooLarge('a line');
  }
  /** The events `text` completes, and the limit it broke after them, if any (those events still go first). */
  function completed(text: string): { readonly events: UpstreamSseEvent[]; readonly failure?: unknown } {
    const events: UpstreamSseEvent[] = [];
    try {
      lines(text, events);
    } catch (failure) {
      return { events, failure };
    }
    return { events };
  }
  // Not destroyed when the consumer stops early: see `finally`.
  const chunks = body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
  try {
    for await (const chunk of chunks) {
      waiting = false;
      const { events, failure } = completed(decoder.write(chunk));
      if (events.length > 0) yield events;
      if (failure) throw failure;
      waiting = true;
      timer.refresh();
    }
    waiting = false;
    // An event not closed by a blank line when the body ends is incomplete: it is dropped.
    const { events, failure } = completed(decoder.end());
    if (events.length > 0) yield events;
    if (failure) throw failure;
  } catch (error) {
    if (signal.aborted || error instanceof UpstreamError) throw error;
    throw new UpstreamError(502, `${what} broke off the response`, `${what} broke off the response: ${String(error)}`);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    // A consumer that stops at the last event (`[DONE]`, `message_stop`) usually does so once the
    // whole body has arrived: then it is drained to its end (the connection is already back in
    // the pool) instead of destroyed, which would build two abort errors with stack traces per
    // call. A body still arriving is destroyed, closing the connection.
    if (hasFullyArrived(body)) body.resume();
    else body.destroy();
  }
}

/** Whether the stream's source has ended (every byte pushed), even if not all of it was read yet. */
function hasFullyArrived(body: Readable): boolean {
  const state = (body as Readable & { readonly _readableState?: { readonly ended?: boolean } })._readableState;
  return !body.destroyed && (body.readableEnded || state?.ended === true);
}
