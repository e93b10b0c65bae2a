import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Catalog, DEFAULT_CATALOG_PATH } from '../catalog';
import { openAiChunks, startFakeUpstream, writeEvents, type FakeUpstream } from '../testing/fake-upstream';
import { OpenAiUpstream } from './openai-upstream';
import { createUpstreamDispatcher, UpstreamError, type UpstreamEvent } from './upstream';

const model = Catalog.fromFile(DEFAULT_CATALOG_PATH).get('haiku-4')!;
const request = { model, messages: [{ role: 'user' as const, content: 'hello' }], params: { max_tokens: 50 } };
const dispatcher = createUpstreamDispatcher();
const timeouts = { timeouts: { responseMs: 300, idleMs: 300 }, maxEventBytes: 1024 * 1024, dispatcher };
afterAll(async () => {
  await dispatcher.destroy();
});
let upstream: FakeUpstream | undefined;
afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
});

async function collect(events: AsyncIterable<UpstreamEvent>): Promise<UpstreamEvent[]> {
  const all: UpstreamEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

describe('OpenAiUpstream', () => {
  it('streams deltas from an OpenAI-compatible endpoint and sends model, key and stream flag', async () => {
    upstream = await startFakeUpstream((_, res) => writeEvents(res, openAiChunks(['Hel', 'lo!'], 'length')));
    const adapter = new OpenAiUpstream(
      { baseUrl: `${upstream.url}/v1`, model: 'gpt-test', apiKey: 'sk-test' },
      timeouts,
    );
    const events = await collect(adapter.stream(request, new AbortController().signal));
    expect(events.flatMap((event) => (event.type === 'choices' ? event.choices : []))).toEqual([
      { index: 0, delta: { role: 'assistant' }, finish_reason: null },
      { index: 0, delta: { content: 'Hel' }, finish_reason: null },
      { index: 0, delta: { content: 'lo!' }, finish_reason: null },
      { index: 0, delta: {}, finish_reason: 'length' },
    ]);
    const received = upstream.received[0]!;
    expect(received.url).toBe('/v1/chat/completions');
    expect(received.headers.authorization).toBe('Bearer sk-test');
    expect(received.body).toEqual({
      model: 'gpt-test',
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 50,
    });
  });

  it('turns an HTTP error into a 502 whose upstream message is only for the log', async () => {
    upstream = await startFakeUpstream((_, res) => {
      res
        .writeHead(429, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: 'rate limited' } }));
    });
    const adapter = new OpenAiUpstream({ baseUrl: upstream.url, model: 'm' }, timeouts);
    const failure = await collect(adapter.stream(request, new AbortController().signal)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UpstreamError);
    expect(failure).toMatchObject({ status: 502, logDetail: expect.stringContaining('HTTP 429: rate limited') });
    expect((failure as UpstreamError).detail).not.toContain('rate limited');
  });

  it('gives up with a 504 when no response arrives in time', async () => {
    upstream = await startFakeUpstream(() => {});
    const adapter = new OpenAiUpstream({ baseUrl: upstream.url, model: 'm' }, timeouts);
    const started = Date.now();
    const failure = await collect(adapter.stream(request, new AbortController().signal)).catch((e: unknown) => e);
    expect(failure).toMatchObject({ status: 504 });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('gives up with a 504 when the stream goes quiet', async () => {
    upstream = await startFakeUpstream((_, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'partial' }, finish_reason: null }] })}\n\n`);
    });
    const adapter = new OpenAiUpstream({ baseUrl: upstream.url, model: 'm' }, timeouts);
    const seen: UpstreamEvent[] = [];
    const failure = await (async () => {
      for await (const event of adapter.stream(request, new AbortController().signal)) seen.push(event);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([
      { type: 'choices', choices: [{ index: 0, delta: { content: 'partial' }, finish_reason: null }] },
    ]);
    expect(failure).toMatchObject({ status: 504, detail: expect.stringContaining('stopped sending') });
  });

  it('reports a refused connection as 502', async () => {
    const dead = await startFakeUpstream(() => {});
    const url = dead.url;
    await dead.close();
    const adapter = new OpenAiUpstream({ baseUrl: url, model: 'm' }, timeouts);
    const failure = await collect(adapter.stream(request, new AbortController().signal)).catch((e: unknown) => e);
    expect(failure).toMatchObject({ status: 502, detail: expect.stringContaining('could not be reached') });
  });
});
