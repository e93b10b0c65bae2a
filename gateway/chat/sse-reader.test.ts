import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readServerSentEvents } from './sse-reader';

const LIMITS = { idleMs: 60_000, maxEventBytes: 1024 * 1024 };
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A body like undici's: pieces pushed as they arrive, `null` once the response is complete. */
function body(pieces: readonly string[], complete: boolean): Readable {
  const stream = new Readable({ read() {} });
  for (const piece of pieces) stream.push(Buffer.from(piece));
  if (complete) stream.push(null);
  return stream;
}

async function firstEvent(stream: Readable): Promise<string | undefined> {
  for await (const event of readServerSentEvents('Upstream test', stream, LIMITS, new AbortController().signal)) {
    return event.data;
  }
  return undefined;
}

describe('readServerSentEvents when the consumer stops at the last event', () => {
  it('drains a body that has fully arrived instead of destroying it with an error (the connection is reused)', async () => {
    const stream = body(['data: {"n":1}\n\ndata: [DONE]\n\n'], true);
    expect(await firstEvent(stream)).toBe('{"n":1}');
    await settle();
    expect(stream.errored).toBeNull();
    expect(stream.readableEnded).toBe(true);
  });

  it('still destroys a body that is still arriving (the connection is closed)', async () => {
    const stream = body(['data: {"n":1}\n\n'], false);
    expect(await firstEvent(stream)).toBe('{"n":1}');
    await settle();
    expect(stream.destroyed).toBe(true);
    expect(stream.readableEnded).toBe(false);
  });
});
