import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../../shared/problem';
import { enrolmentMessages } from '../../../shared/reasons';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas } from '../../testing/identity-provider';

let harness: GatewayHarness;

beforeAll(async () => {
  harness = await startGatewayHarness();
});
afterAll(async () => {
  await harness?.close();
});

describe('claimed assurance', () => {
  it('refuses a software key whose report claims hardware, and enrols nothing', async () => {
    const device = await TestDevice.create({ assurance: 'hardware' });
    const client = new GatewayTestClient(harness.gateway.url, device);
    const token = await harness.idp.mint(testPersonas.usResearcher);
    const response = await client.requestSession(token, await client.challenge(token));
    expect(response.status).toBe(403);
    // application/json unless the caller asks for application/problem+json; the body is the same.
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = ProblemDetails.parse(await response.json());
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:device-attestation-failed',
      reason: 'DEVICE_ATTESTATION_FAILED',
      step: 'missing',
      message: enrolmentMessages.DEVICE_ATTESTATION_FAILED,
    });
    expect(await harness.gateway.devices.find(testPersonas.usResearcher.id, device.jkt)).toBeUndefined();
    const records = await harness.gateway.audit.list();
    expect(records.some((r) => r.kind === 'session' && r.data.jkt === device.jkt)).toBe(false);
    expect(records.filter((r) => r.kind === 'enrolment').at(-1)?.data).toMatchObject({
      outcome: 'refused',
      reason: 'DEVICE_ATTESTATION_FAILED',
      jkt: device.jkt,
    });
  });

  it('leaves Orion 2 Secure refused to a session whose key the gateway did not verify as hardware', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'orion-2-secure', messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { reason?: string }).reason).toBe('DEVICE_ASSURANCE_TOO_LOW');
  });
});
