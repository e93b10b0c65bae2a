import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../../gateway/testing/gateway-harness';
import { testPersonas, type TestPersona } from '../../gateway/testing/identity-provider';
import { SESSION_REVOKED_REASON } from '../../shared/protocol';
import { compliantLinuxDevice, createRecordedPostureService } from '../device/fixtures/devices';
import { DeviceKeyStore } from '../device/key';
import { MemorySecretStore } from '../node/adapters';
import { GatewaySession } from '../session/gateway-session';
import { EntitlementService, type SessionRevocation } from './service';

// The client's entitlement code (document, event stream, revocation) against the real gateway
// (gateway/server.ts) over loopback HTTP, not only against the fake next to it (test-gateway.ts).

let harness: GatewayHarness;
let folder: string;
const services: EntitlementService[] = [];

beforeAll(async () => {
  harness = await startGatewayHarness();
  folder = await mkdtemp(join(tmpdir(), 'clearance-entitlements-it-'));
});

afterEach(() => {
  for (const service of services.splice(0)) service.dispose();
});

afterAll(async () => {
  await harness?.close();
  await rm(folder, { recursive: true, force: true });
});

async function connect(persona: TestPersona) {
  const userData = join(folder, randomUUID());
  const keys = new DeviceKeyStore({
    paths: { userData, logs: folder },
    secrets: new MemorySecretStore(),
    log: () => {},
  });
  const posture = createRecordedPostureService(compliantLinuxDevice);
  const session = new GatewaySession({
    gatewayUrl: harness.gateway.url,
    http: (input, init) => fetch(input, init),
    clock: { now: () => Date.now() },
    deviceKey: () => keys.load(),
    posture: () => posture.check(),
    getIdpAccessToken: () => harness.idp.mint(persona),
    appVersion: '0.1.0',
    platform: compliantLinuxDevice.platform,
  });
  await session.ensureSession();
  const jkt = (await keys.load()).thumbprint;
  const service = new EntitlementService({
    gatewayUrl: harness.gateway.url,
    fetch: (path, init) => session.fetch(path, init),
    http: (input, init) => fetch(input, init),
    secrets: new MemorySecretStore(),
    paths: { userData, logs: folder },
    clock: { now: () => Date.now() },
    expectedSub: () => persona.id,
    expectedJkt: () => jkt,
    issuer: harness.gateway.url,
    log: () => {},
    timing: { reconnect: { initialMs: 50, maxMs: 200 }, jwksMinRefetchIntervalMs: 0 },
  });
  services.push(service);
  const revocations: SessionRevocation[] = [];
  service.onDidRevokeSession((revocation) => revocations.push(revocation));
  await service.start();
  return { service, jkt, revocations };
}

async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt++) await new Promise((r) => setTimeout(r, 50));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

describe('EntitlementService against the real gateway', () => {
  it('verifies the document the gateway signs and follows a policy change announced on its event stream', async () => {
    const { service } = await connect(testPersonas.usResearcher);
    expect(service.checkModel('mythos-5')).toMatchObject({ allowed: true });
    expect(service.checkModel('haiku-4')).toMatchObject({ allowed: true });
    expect(service.checkModel('sentinel-red-team').allowed).toBe(false);
    await eventually(() => service.view.live === 'connected', 'the event stream to open');

    writeFileSync(
      join(harness.policiesDir, 'zz-entitlements-it.cedar'),
      `@id("it-haiku-off")
@reason("MODEL_SUSPENDED")
@title("Model suspended")
@message("{model} is suspended.")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"haiku-4");
`,
    );
    expect(await harness.gateway.reloadPolicies()).toMatchObject({ ok: true });
    await eventually(() => !service.checkModel('haiku-4').allowed, 'the suspension to reach the client');
    expect(service.checkModel('haiku-4')).toMatchObject({ allowed: false, reason: 'MODEL_SUSPENDED' });
    expect(service.checkModel('mythos-5')).toMatchObject({ allowed: true });
  });

  it("hears the gateway's session.revoked with its reason when IT revokes the device", async () => {
    const { jkt, revocations } = await connect(testPersonas.fnResearcher);
    expect(await harness.gateway.revokeDevice(testPersonas.fnResearcher.id, jkt, 'test')).toBe(true);
    await eventually(() => revocations.length > 0, 'session.revoked');
    expect(revocations[0]).toMatchObject({ reason: SESSION_REVOKED_REASON.deviceRevoked });
  });
});
