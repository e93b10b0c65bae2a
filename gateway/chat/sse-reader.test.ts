import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readServerSentEventBatches, readServerSentEvents } from './sse-reader';
import { UpstreamError } from './upstream';

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

describe('readServerSentEventBatches', () => {
  it('hands over the events of one piece together, and those before a broken limit before the 502', async () => {
    const stream = body(['data: 1\n\nevent: x\ndata: 2\n\ndata: 3', '\n\ndata: ' + 'y'.repeat(64) + '\n\n'], true);
    const batches: string[][] = [];
    const reading = (async () => {
      for await (const batch of readServerSentEventBatches(
        'Upstream test',
        stream,
        { idleMs: 60_000, maxEventBytes: 32 },
        new AbortController().signal,
      )) {
        batches.push(batch.map((event) => `${event.event ?? ''}:${event.data}`));
      }
    })();
    await expect(reading).rejects.toBeInstanceOf(UpstreamError);
    // Both pieces were waiting, so they are read as one: one batch, then the limit.
    expect(batches).toEqual([[':1', 'x:2', ':3']]);
  });
});
