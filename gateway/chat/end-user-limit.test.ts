import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';

// Found by the attack pass: the OpenAI `user` parameter is copied into the decision's audit record
// (`endUser`) and was unbounded, so any signed-in caller could append ~1 MiB audit records, hash-
// chained and fsynced, 600 times a minute. It is now at most 256 characters, else 400 naming it.

let harness: GatewayHarness;
beforeAll(async () => {
  harness = await startGatewayHarness();
});
afterAll(async () => {
  await harness?.close();
});

const ask = (user: string) => ({ model: 'haiku-4', user, messages: [{ role: 'user', content: 'hello' }] });

describe('the end-user id a completion names', () => {
  it('refuses one longer than 256 characters with 400 naming the parameter, and audits no copy of it', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', { body: ask('u'.repeat(900_000)) });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { type: string; error: { param: string } };
    expect(body.type).toBe('urn:clearance:problem:bad-request');
    expect(body.error.param).toBe('user');
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(Math.max(...records.map((record) => JSON.stringify(record.data).length))).toBeLessThan(10_000);
  });

  it('passes one of 256 characters and records it', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', { body: ask('e'.repeat(256)) });
    expect(response.status).toBe(200);
    await response.text();
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(records.some((record) => record.data.endUser === 'e'.repeat(256))).toBe(true);
  });
});

describe('the model name a completion asks for', () => {
  // Same weakness: an unknown model's name is echoed in the 404 (twice) and recorded in the audit,
  // so a 900,000-character name made a 1.8 MB answer and a 900 kB audit record.
  it('refuses one longer than 256 characters with 400 naming the parameter, and audits no copy of it', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const response = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'm'.repeat(900_000), messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { type: string; error: { param: string } };
    expect(body.type).toBe('urn:clearance:problem:bad-request');
    expect(body.error.param).toBe('model');
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(Math.max(...records.map((record) => JSON.stringify(record.data).length))).toBeLessThan(10_000);
  });
});
