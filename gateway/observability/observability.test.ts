import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import type { RequestLogEntry } from '../server';

let harness: GatewayHarness;
const entries: RequestLogEntry[] = [];
beforeAll(async () => {
  harness = await startGatewayHarness({ requestLog: (entry) => entries.push(entry), metricsToken: 'metrics-secret' });
});
afterAll(async () => {
  await harness?.close();
});

/** `Server-Timing` as {phase: ms}. */
function phases(response: Response): Record<string, number> {
  const header = response.headers.get('server-timing') ?? '';
  return Object.fromEntries(
    header
      .split(',')
      .map((part) => /^\s*([a-z]+);dur=([0-9.]+)\s*$/.exec(part))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => [match[1], Number(match[2])]),
  );
}

const scrape = async () =>
  (await fetch(`${harness.gateway.url}/metrics`, { headers: { authorization: 'Bearer metrics-secret' } })).text();

describe('Server-Timing and request ids', () => {
  it('reports auth, policy, audit and upstream first byte on an allowed completion', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'haiku-4', messages: [{ role: 'user', content: 'hello' }] },
      headers: { 'x-request-id': 'trace-42' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('trace-42');
    expect(Object.keys(phases(response)).sort()).toEqual(['audit', 'auth', 'policy', 'total', 'upstream']);
    const entry = entries.find((e) => e.requestId === 'trace-42');
    expect(entry).toMatchObject({ route: '/v1/chat/completions', status: 200, decision: 'allow', method: 'POST' });
    expect(entry?.phases.upstream).toBeGreaterThan(0);
  });

  it('puts Server-Timing and a generated request id on errors and unauthenticated routes too', async () => {
    const unauthenticated = await fetch(`${harness.gateway.url}/v1/models`);
    expect(unauthenticated.status).toBe(401);
    expect(phases(unauthenticated).auth).toBeGreaterThanOrEqual(0);
    expect(unauthenticated.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{24}$/);
    const discovery = await fetch(`${harness.gateway.url}/.well-known/clearance`, {
      headers: { 'x-request-id': 'bad id\twith tab' },
    });
    expect(phases(discovery).total).toBeGreaterThanOrEqual(0);
    expect(discovery.headers.get('x-request-id')).not.toContain('bad');
    const missing = await fetch(`${harness.gateway.url}/nope`);
    expect(missing.headers.get('server-timing')).toMatch(/total;dur=/);
  });

  it('reports the denied decision in the log and the metrics', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const response = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'mythos-5', messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(response.status).toBe(403);
    const id = response.headers.get('x-request-id');
    expect(entries.find((e) => e.requestId === id)).toMatchObject({ decision: 'deny', status: 403 });
    expect(await scrape()).toMatch(
      /clearance_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="403",decision="deny"\} [1-9]/,
    );
  });
});

describe('GET /metrics', () => {
  it('needs the metrics token when one is configured', async () => {
    expect((await fetch(`${harness.gateway.url}/metrics`)).status).toBe(401);
    expect(
      (await fetch(`${harness.gateway.url}/metrics`, { headers: { authorization: 'Bearer wrong-secret!' } })).status,
    ).toBe(401);
  });

  it('exposes request latency, upstream latency, subscribers, reloads and cache sizes', async () => {
    const client = await harness.signIn(testPersonas.contractor);
    const controller = new AbortController();
    const events = await client.request('GET', '/v1/events', { signal: controller.signal });
    expect(events.status).toBe(200);
    expect(events.headers.get('server-timing')).toMatch(/auth;dur=/);
    await harness.gateway.reloadPolicies();
    const text = await scrape();
    controller.abort();
    expect(text).toMatch(/clearance_event_subscribers [1-9]/);
    expect(text).toMatch(/clearance_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/models"/);
    expect(text).toMatch(/clearance_upstream_first_byte_seconds_count\{outcome="ok"\} [1-9]/);
    expect(text).toMatch(/clearance_reloads_total\{kind="policy",result="unchanged"\} 1/);
    expect(text).toMatch(/clearance_cache_entries\{cache="decisions"\} [1-9]/);
    expect(text).toMatch(/clearance_gateway_process_cpu_seconds_total/);
  });
});
