import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import { TestDevice } from '../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { DEFAULT_LIMITS } from './quotas';

/**
 * Two people share one laptop, and so one device key (README, "One profile per person"). Bao, the
 * second user, floods the gateway from it: his own quotas run out, Avery's on the same device must not.
 */
describe('a second person on the same device', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness({
      limits: {
        ...DEFAULT_LIMITS,
        perDevice: { max: 20, windowMs: 60_000 },
        perUser: { max: 1000, windowMs: 60_000 },
        replayEntriesPerDevice: 30,
      },
    });
  });
  afterAll(async () => harness.close());

  async function flood(client: Awaited<ReturnType<GatewayHarness['signIn']>>, count: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) {
      const response = await client.request('GET', '/v1/models');
      statuses.push(response.status);
      await response.text();
    }
    return statuses;
  }

  it("cannot use up the other person's per-device request quota", async () => {
    const device = await TestDevice.create();
    const avery = await harness.signIn(testPersonas.usResearcher, device);
    const bao = await harness.signIn(testPersonas.fnResearcher, device);
    const baos = await flood(bao, 25);
    expect(baos.slice(-1)).toEqual([429]);
    const response = await avery.request('GET', '/v1/models');
    expect(response.status).toBe(200);
  });

  it("cannot fill the other person's share of the DPoP replay cache", async () => {
    const device = await TestDevice.create();
    const avery = await harness.signIn(testPersonas.usResearcher, device);
    const bao = await harness.signIn(testPersonas.fnResearcher, device);
    // Each of Bao's proofs is remembered even when his request is refused for his quota.
    const baos = await flood(bao, 40);
    expect(baos.at(-1)).toBe(429);
    const response = await avery.request('GET', '/v1/models');
    const body = response.status === 200 ? undefined : ProblemDetails.parse(await response.json());
    expect({ status: response.status, detail: body?.detail }).toEqual({ status: 200, detail: undefined });
  });
});
