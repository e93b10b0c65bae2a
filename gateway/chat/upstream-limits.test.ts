import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import type { CatalogFile } from '../catalog';
import { startFakeUpstream, type FakeUpstream } from '../testing/fake-upstream';
import { SseReader, type GatewayTestClient } from '../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';

const MIB = 1024 * 1024;
/** What the fast upstream offers in total, and the most the gateway may let it write to a paused client. */
const OFFERED = 32 * MIB;
const PAUSED_BOUND = 16 * MIB;
/** The gateway's cap on one upstream event in these tests. */
const MAX_EVENT = 64 * 1024;

const open = {
  exportControlled: false,
  suspended: false,
  requiredGroups: [],
  requiresHardware: false,
  requiresCompliantDevice: false,
};

const chunkLine = (content: string) =>
  `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('upstream streams: backpressure and limits', () => {
  let harness: GatewayHarness;
  let client: GatewayTestClient;
  const upstreams: FakeUpstream[] = [];
  let written = 0;

  beforeAll(async () => {
    // Writes OFFERED bytes of 16 KiB events as fast as its socket takes them.
    const fast = await startFakeUpstream(async (_, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const line = chunkLine('x'.repeat(16 * 1024));
      while (written < OFFERED && !res.destroyed) {
        written += line.length;
        if (!res.write(line)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
      }
      res.end('data: [DONE]\n\n');
    });
    const oversized = await startFakeUpstream((request, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunkLine('fine'));
      const stream = (request.body as { stream_options?: unknown }).stream_options !== undefined;
      // One event far above the cap; then, for the streaming case, a line that never ends.
      res.write(stream ? chunkLine('y'.repeat(MAX_EVENT * 4)) : `data: ${'z'.repeat(MAX_EVENT * 4)}`);
    });
    const unending = await startFakeUpstream((_, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: {"choices":[{"index":0,"delta":{"content":"${'w'.repeat(MAX_EVENT * 2)}`);
    });
    const jsonOk = await startFakeUpstream((_, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[]}');
    });
    const failing = await startFakeUpstream((_, res) => {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: 'internal shard db-7 at 10.0.0.12 rejected tenant 991' } }));
    });
    upstreams.push(fast, oversized, unending, jsonOk, failing);
    const model = (id: string, upstream: FakeUpstream) => ({
      id,
      name: id,
      upstream: { kind: 'openai' as const, baseUrl: upstream.url, model: 'm' },
      attributes: open,
    });
    const catalog: CatalogFile = {
      models: [
        model('fast', fast),
        model('oversized', oversized),
        model('unending', unending),
        model('json-ok', jsonOk),
        model('failing', failing),
      ],
    };
    harness = await startGatewayHarness({ catalog, maxUpstreamEventBytes: MAX_EVENT });
    client = await harness.signIn(testPersonas.contractor);
  });
  afterAll(async () => {
    await harness?.close();
    await Promise.all(upstreams.map((upstream) => upstream.close()));
  });

  const body = (model: string, stream: boolean) => ({
    model,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
    messages: [{ role: 'user', content: 'go' }],
  });

  it('holds a paused client’s stream at a bounded size instead of buffering the upstream', async () => {
    const url = `${harness.gateway.url}/v1/chat/completions`;
    const payload = JSON.stringify(body('fast', true));
    const req = httpRequest(url, {
      method: 'POST',
      headers: {
        authorization: `DPoP ${client.accessToken!}`,
        dpop: await client.device.proof('POST', url, { accessToken: client.accessToken! }),
        'content-type': 'application/json',
      },
    });
    req.end(payload);
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    expect(res.statusCode).toBe(200);
    res.pause();
    const memoryBefore = process.memoryUsage();
    // Stalled: no byte more for a whole second.
    for (let last = -1, quiet = 0; quiet < 4;) {
      quiet = written === last ? quiet + 1 : 0;
      last = written;
      await sleep(250);
    }
    const memoryAtStall = process.memoryUsage();
    const growth =
      memoryAtStall.heapUsed + memoryAtStall.arrayBuffers - (memoryBefore.heapUsed + memoryBefore.arrayBuffers);
    console.log(
      `paused client: the upstream stalled after ${(written / MIB).toFixed(1)} MiB of ${OFFERED / MIB} MiB; ` +
        `heap + buffers grew ${(growth / MIB).toFixed(1)} MiB`,
    );
    expect(written).toBeLessThan(PAUSED_BOUND);
    expect(growth).toBeLessThan(PAUSED_BOUND);

    // Reading again gets every byte, in order, to the end.
    let received = 0;
    let tail = '';
    res.setEncoding('utf8');
    res.on('data', (text: string) => {
      received += text.length;
      tail = (tail + text).slice(-64);
    });
    const resumed = performance.now();
    res.resume();
    await once(res, 'end');
    console.log(
      `read ${(received / MIB).toFixed(1)} MiB after resuming in ${(performance.now() - resumed).toFixed(0)} ms`,
    );
    expect(written).toBeGreaterThanOrEqual(OFFERED);
    expect(received).toBeGreaterThan(OFFERED);
    expect(tail.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('answers 502 when one upstream event is larger than the limit', async () => {
    const response = await client.request('POST', '/v1/chat/completions', { body: body('oversized', false) });
    expect(response.status).toBe(502);
    const problem = ProblemDetails.parse(await response.json());
    expect(problem.detail).toContain(`limit of ${MAX_EVENT} bytes`);
    expect(problem.error).toMatchObject({ code: 'upstream_error', status: 502 });
  });

  it('ends a stream with a 502 error event when an event grows past the limit mid-stream', async () => {
    const response = await client.request('POST', '/v1/chat/completions', { body: body('oversized', true) });
    expect(response.status).toBe(200);
    const reader = new SseReader(response);
    const first = await reader.next();
    expect(first?.data).toContain('"content":"fine"');
    const error = await reader.next();
    expect(error?.event).toBe('error');
    const payload = ProblemDetails.parse(JSON.parse(error!.data));
    expect(payload.status).toBe(502);
    expect(payload.error).toMatchObject({ code: 'upstream_error', status: 502 });
  });

  it('answers 502 for a line that never ends, before buffering past the limit', async () => {
    const response = await client.request('POST', '/v1/chat/completions', { body: body('unending', false) });
    expect(response.status).toBe(502);
    expect(ProblemDetails.parse(await response.json()).detail).toContain('a line larger than');
  });

  it('treats a 200 that is not an event stream as an upstream error, not an empty completion', async () => {
    const response = await client.request('POST', '/v1/chat/completions', { body: body('json-ok', false) });
    expect(response.status).toBe(502);
    expect(ProblemDetails.parse(await response.json()).detail).toContain('instead of an event stream');
  });

  it('logs the upstream’s error text with the request id and does not relay it', async () => {
    const response = await client.request('POST', '/v1/chat/completions', { body: body('failing', false) });
    expect(response.status).toBe(502);
    const text = await response.text();
    expect(text).not.toContain('db-7');
    expect(text).toContain('HTTP 400');
    const requestId = response.headers.get('x-request-id')!;
    expect(harness.logLines.some((line) => line.includes(requestId) && line.includes('db-7 at 10.0.0.12'))).toBe(true);
  });
});
