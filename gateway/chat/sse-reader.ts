import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { UpstreamError } from './upstream';

/**
 * Reads Server-Sent Events from a response body, failing with 504 when the body goes
 * quiet for longer than `idleMs`.
 */
export async function* readServerSentEvents(
  what: string,
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  signal: AbortSignal,
): AsyncGenerator<EventSourceMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const pending: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => pending.push(event) });
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new UpstreamError(504, `${what} stopped sending for ${idleMs} ms`)), idleMs);
      });
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await Promise.race([reader.read(), idle]);
      } catch (error) {
        if (signal.aborted || error instanceof UpstreamError) throw error;
        throw new UpstreamError(502, `${what} broke off the response (${(error as Error).message})`);
      } finally {
        clearTimeout(timer);
      }
      if (chunk.done) {
        parser.feed(decoder.decode());
        yield* pending.splice(0);
        return;
      }
      parser.feed(decoder.decode(chunk.value, { stream: true }));
      yield* pending.splice(0);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    void reader.cancel().catch(() => {});
  }
}
