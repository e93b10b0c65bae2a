import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiscoveryDocument } from '../shared/discovery';
import { EntitlementDocument } from '../shared/entitlements';
import { startStack, type RunningStack } from './stack';
import { GatewayTestClient, TestDevice } from './testing/device-client';
import { signInWithDevProvider } from './testing/idp-sign-in';
import { startTestPostgres, startTestRedis, type TestService } from './testing/services';

/** `npm run stack -- --instances 2 --store postgres`: two gateways on real PostgreSQL and Redis behind one URL. */
let stack: RunningStack;
let stateDir: string;
let postgres: TestService;
let redis: TestService;
beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'clearance-stack-cluster-'));
  [postgres, redis] = await Promise.all([startTestPostgres(), startTestRedis()]);
  stack = await startStack({
    stateDir,
    instances: 2,
    sharedState: { postgresUrl: postgres.url, redisUrl: redis.url },
    demoTokensPerSecond: 5000,
    log: () => {},
  });
}, 120_000);
afterAll(async () => {
  await stack?.close();
  await Promise.all([postgres?.stop(), redis?.stop()]);
  rmSync(stateDir, { recursive: true, force: true });
});

describe('startStack with two instances', () => {
  it('refuses several instances without shared state', async () => {
    await expect(startStack({ stateDir: join(stateDir, 'refused'), instances: 2, log: () => {} })).rejects.toThrow(
      /Several instances need shared state/,
    );
  });

  it('serves one sign-in across both instances behind one URL', async () => {
    expect(stack.instanceUrls).toHaveLength(2);
    expect(new Set(stack.instanceUrls).size).toBe(2);
    for (const url of stack.instanceUrls) {
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(200);
      // Every instance names the balancer's URL as the issuer, so DPoP proofs fit either one.
      const discovery = DiscoveryDocument.parse(await (await fetch(`${url}/.well-known/clearance`)).json());
      expect(discovery.issuer).toBe(stack.gatewayUrl);
    }
    const idpToken = await signInWithDevProvider(stack, 'us-researcher');
    const client = new GatewayTestClient(stack.gatewayUrl, await TestDevice.create());
    await client.signIn(idpToken);
    const document = EntitlementDocument.parse((await client.entitlements()).claims);
    expect(document.models.find((model) => model.id === 'mythos-5')?.status).toBe('allowed');
    // The same session works at each instance directly: devices and keys are shared.
    for (const url of stack.instanceUrls) {
      const response = await fetch(`${url}/v1/models`, {
        headers: {
          authorization: `DPoP ${client.accessToken}`,
          dpop: await client.device.proof('GET', `${stack.gatewayUrl}/v1/models`, { accessToken: client.accessToken }),
        },
      });
      expect(response.status).toBe(200);
    }
  });
});
