import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../../shared/problem';
import { enrolmentMessages } from '../../../shared/reasons';
import { startGateway } from '../../server';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { createTestCa } from '../../testing/device-certificates';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas } from '../../testing/identity-provider';

async function refusal(response: Response) {
  expect(response.status).toBe(403);
  return ProblemDetails.parse(await response.json());
}

describe('enrolment policy approval', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness({ deviceTrust: { enrolmentPolicy: 'approval' } });
  });
  afterAll(async () => {
    await harness?.close();
  });

  const admin = (path: string, body?: unknown) =>
    fetch(`${harness.gateway.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${harness.gateway.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('keeps a new device pending until an admin approves it, and audits who approved', async () => {
    const persona = testPersonas.usResearcher;
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const token = await harness.idp.mint(persona);

    const pending = await refusal(await client.requestSession(token, await client.challenge(token)));
    expect(pending).toMatchObject({
      type: 'urn:clearance:problem:device-enrolment-pending',
      reason: 'DEVICE_ENROLMENT_PENDING',
      message: enrolmentMessages.DEVICE_ENROLMENT_PENDING,
    });
    expect(await harness.gateway.devices.find(persona.id, client.device.jkt)).toBeUndefined();

    const listed = (await (await admin('/v1/admin/devices?status=pending')).json()) as {
      policy: string;
      devices: { userId: string; jkt: string; status: string }[];
    };
    expect(listed.policy).toBe('approval');
    expect(listed.devices).toContainEqual(
      expect.objectContaining({ userId: persona.id, jkt: client.device.jkt, status: 'pending' }),
    );

    const noActor = await admin('/v1/admin/devices/approve', { user: persona.id, jkt: client.device.jkt });
    expect(noActor.status).toBe(400);
    expect((await harness.gateway.devices.find(persona.id, client.device.jkt))?.jkt).toBeUndefined();

    const approved = await admin('/v1/admin/devices/approve', {
      user: persona.id,
      jkt: client.device.jkt,
      actor: 'it-admin@clearance.example',
    });
    expect(approved.status).toBe(200);
    const records = await harness.gateway.audit.list();
    expect(records.filter((r) => r.kind === 'admin').at(-1)?.data).toMatchObject({
      action: 'devices.approve',
      jkt: client.device.jkt,
      actor: 'it-admin@clearance.example',
      previous: 'pending',
    });

    const session = await client.signIn(token);
    expect(session.device.id).toBe(client.device.deviceId);
    expect((await client.request('GET', '/v1/models')).status).toBe(200);
  });

  it('retires a device: its session is revoked and it cannot open another, audited with the actor', async () => {
    const persona = testPersonas.fnResearcher;
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const token = await harness.idp.mint(persona);
    await refusal(await client.requestSession(token, await client.challenge(token)));
    await admin('/v1/admin/devices/approve', { user: persona.id, jkt: client.device.jkt, actor: 'alice' });
    await client.signIn(token);

    const retired = await admin('/v1/admin/devices/retire', { user: persona.id, jkt: client.device.jkt, actor: 'bob' });
    expect(retired.status).toBe(200);
    expect(((await retired.json()) as { sessionsRevoked: boolean }).sessionsRevoked).toBe(true);
    expect((await client.request('GET', '/v1/models')).status).toBe(401);
    const again = await refusal(await client.requestSession(token, await client.challenge(token)));
    expect(again.type).toBe('urn:clearance:problem:device-revoked');
    const records = await harness.gateway.audit.list();
    expect(records.filter((r) => r.kind === 'admin').at(-1)?.data).toMatchObject({
      action: 'devices.retire',
      actor: 'bob',
    });
    const reapprove = await admin('/v1/admin/devices/approve', {
      user: persona.id,
      jkt: client.device.jkt,
      actor: 'alice',
    });
    expect(reapprove.status).toBe(409);
  });

  it('refuses the admin device routes without the admin token', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/admin/devices`);
    expect(response.status).toBe(401);
  });
});

describe('enrolment policy requirements', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    const ca = await createTestCa('Lab Device CA');
    harness = await startGatewayHarness({
      deviceTrust: { enrolmentPolicy: 'certificate', deviceCertificates: { ca: ca.certPem } },
    });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('refuses a device without a managed-device certificate when the policy requires one', async () => {
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const token = await harness.idp.mint(testPersonas.usResearcher);
    const body = await refusal(await client.requestSession(token, await client.challenge(token)));
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:device-certificate-required',
      reason: 'DEVICE_CERTIFICATE_REQUIRED',
      message: enrolmentMessages.DEVICE_CERTIFICATE_REQUIRED,
    });
    expect(await harness.gateway.devices.find(testPersonas.usResearcher.id, client.device.jkt)).toBeUndefined();
  });

  it('will not start with an enrolment policy it cannot read', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'clearance-enrolment-'));
    try {
      await expect(
        startGateway({
          stateDir,
          identityProvider: { issuer: 'https://idp.invalid', jwksUri: 'https://idp.invalid/jwks', audience: 'x' },
          discovery: {
            identityProvider: { authority: 'https://idp.invalid', clientId: 'x', scopes: [], protocol: 'OIDC' },
          },
          deviceTrust: { enrolmentPolicy: 'tpm+aproval' },
          log: () => {},
        }),
      ).rejects.toThrow(/"aproval"/);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
