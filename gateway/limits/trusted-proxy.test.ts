import { afterEach, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';

// Found by the attack pass: behind the TLS proxy the docs describe (nginx on the same host), every
// caller reaches the gateway from the proxy's one address, so the per-address limit (counted before
// any authentication) was one budget for everybody: an outsider sending 1,200 requests a minute
// got every user 429. `trustedProxies` makes the gateway read X-Forwarded-For from those peers only.

let harness: GatewayHarness | undefined;

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const LIMIT = 5;

async function models(from: string): Promise<Response> {
  const response = await fetch(`${harness!.gateway.url}/v1/models`, { headers: { 'x-forwarded-for': from } });
  await response.text();
  return response;
}

describe('the per-address limit behind a reverse proxy', () => {
  it('counts each client the trusted proxy forwards for on its own, and audits the client address', async () => {
    harness = await startGatewayHarness({
      trustedProxies: ['127.0.0.1'],
      limits: { perAddress: { max: LIMIT, windowMs: 60_000 } },
    });
    for (let i = 0; i < LIMIT; i++) expect((await models('203.0.113.7')).status).toBe(401);
    const flooded = await models('203.0.113.7');
    expect(flooded.status).toBe(429);
    expect(flooded.headers.get('retry-after')).toBeTruthy();

    const other = await models('203.0.113.8');
    expect(other.status).toBe(401);
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(records.some((record) => record.data.address === '203.0.113.8')).toBe(true);
    expect(records.some((record) => record.data.address === '127.0.0.1')).toBe(false);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy, so a flood cannot escape the limit', async () => {
    harness = await startGatewayHarness({ limits: { perAddress: { max: LIMIT, windowMs: 60_000 } } });
    for (let i = 0; i < LIMIT; i++) expect((await models(`198.51.100.${i + 1}`)).status).toBe(401);
    expect((await models('198.51.100.200')).status).toBe(429);
  });
});
