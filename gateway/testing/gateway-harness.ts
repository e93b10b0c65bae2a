import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICIES_DIR } from '../policy/engine';
import { startGateway, type GatewayOptions, type RunningGateway } from '../server';
import { GatewayTestClient, TestDevice } from './device-client';
import { startTestIdentityProvider, type TestIdentityProvider, type TestPersona } from './identity-provider';

/** A gateway wired to a test identity provider, in a throw-away state folder. */
export interface GatewayHarness {
  readonly gateway: RunningGateway;
  readonly idp: TestIdentityProvider;
  readonly stateDir: string;
  /** A writable copy of gateway/policies the gateway watches. */
  readonly policiesDir: string;
  /** Every line the gateway logged. */
  readonly logLines: readonly string[];
  /** Signs a persona in on a fresh (or the given) device and returns the client. */
  signIn(
    persona: TestPersona,
    device?: TestDevice,
    posture?: Parameters<GatewayTestClient['signIn']>[1],
  ): Promise<GatewayTestClient>;
  close(): Promise<void>;
}

/** Starts a test identity provider and a gateway trusting it; `overrides` adjust the gateway. */
export async function startGatewayHarness(overrides: Partial<GatewayOptions> = {}): Promise<GatewayHarness> {
  const stateDir = mkdtempSync(join(tmpdir(), 'clearance-gateway-'));
  const policiesDir = join(stateDir, 'policies');
  cpSync(DEFAULT_POLICIES_DIR, policiesDir, { recursive: true });
  const idp = await startTestIdentityProvider();
  const lines: string[] = [];
  const gateway = await startGateway({
    stateDir: join(stateDir, 'gateway'),
    policiesDir,
    identityProvider: { issuer: idp.issuer, jwksUri: idp.jwksUri, audience: idp.audience, caCertPem: idp.caCertPem },
    discovery: {
      identityProvider: {
        authority: idp.issuer,
        clientId: 'clearance-desktop',
        scopes: ['openid', 'profile'],
        protocol: 'OIDC',
      },
    },
    demoTokensPerSecond: 2000,
    log: (line) => lines.push(line),
    ...overrides,
  });
  return {
    gateway,
    idp,
    stateDir,
    policiesDir,
    logLines: lines,
    async signIn(persona, device, posture) {
      const client = new GatewayTestClient(gateway.url, device ?? (await TestDevice.create()));
      await client.signIn(await idp.mint(persona), posture);
      return client;
    },
    async close() {
      await gateway.close();
      await idp.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
