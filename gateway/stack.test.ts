import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { DiscoveryDocument } from '../shared/discovery';
import { EntitlementDocument } from '../shared/entitlements';
import { startStack, type RunningStack } from './stack';
import { GatewayTestClient, TestDevice } from './testing/device-client';
import { signInWithDevProvider } from './testing/idp-sign-in';

let stack: RunningStack;
let stateDir: string;
beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'clearance-stack-'));
  stack = await startStack({ stateDir, demoTokensPerSecond: 5000, log: () => {} });
});
afterAll(async () => {
  await stack?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('startStack', () => {
  it('points discovery at the development identity provider and copies the policies', async () => {
    const discovery = DiscoveryDocument.parse(await (await fetch(`${stack.gatewayUrl}/.well-known/clearance`)).json());
    expect(discovery.identity_provider).toMatchObject({
      authority: stack.idpUrl,
      client_id: stack.clientId,
      protocol: 'OIDC',
    });
    expect(stack.policiesDir).toBe(join(stateDir, 'policies'));
    expect(existsSync(join(stack.policiesDir, 'export-control.cedar'))).toBe(true);
    expect(stack.personas.map((p) => p.id)).toEqual(['us-researcher', 'fn-researcher', 'pending', 'contractor']);
  });

  it('accepts real identity-provider tokens over TLS with its CA: same office, different access', async () => {
    const documents: Record<string, EntitlementDocument> = {};
    for (const persona of ['us-researcher', 'fn-researcher']) {
      const idpToken = await signInWithDevProvider(stack, persona);
      expect(decodeProtectedHeader(idpToken).typ).toBe('at+jwt');
      const client = new GatewayTestClient(stack.gatewayUrl, await TestDevice.create());
      await client.signIn(idpToken);
      documents[persona] = EntitlementDocument.parse((await client.entitlements()).claims);
    }
    const mythos = (persona: string) => documents[persona]?.models.find((m) => m.id === 'mythos-5');
    expect(mythos('us-researcher')?.status).toBe('allowed');
    expect(mythos('fn-researcher')).toMatchObject({ status: 'denied', reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED' });
  });
});
