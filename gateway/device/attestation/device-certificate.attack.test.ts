import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../../shared/problem';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { createTestCa, issueCertificate, type IssuedCertificate } from '../../testing/device-certificates';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas } from '../../testing/identity-provider';

/**
 * Attacks on managed-device certificates (docs/protocol.md, "Managed-device certificates"): an
 * employee holds one genuine device certificate (an end-entity certificate, `cA: false`) and uses
 * its key to mint certificates for other, unmanaged machines, sending the genuine one as the
 * "intermediate". Only a CA may issue: the chain must be refused.
 */
const persona = testPersonas.usResearcher;
let deviceCa: IssuedCertificate;
let serverCa: IssuedCertificate;
let genuine: IssuedCertificate;
let minted: IssuedCertificate;
const agents: Agent[] = [];

beforeAll(async () => {
  [deviceCa, serverCa] = await Promise.all([createTestCa('Lab Device CA'), createTestCa('Gateway TLS CA')]);
  genuine = await issueCertificate(deviceCa, 'laptop-0042.lab.example');
  // Signed by the genuine device certificate's key, not by the CA.
  minted = await issueCertificate(genuine, 'personal-laptop.home.example');
});

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.close()));
});

function tlsFetch(certPem: string, keyPem: string): typeof fetch {
  const agent = new Agent({ connect: { ca: serverCa.certPem, cert: certPem, key: keyPem } });
  agents.push(agent);
  return ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
}

async function expectCertificateRefusal(harness: GatewayHarness, response: Response): Promise<void> {
  expect(response.status).toBe(403);
  const body = ProblemDetails.parse(await response.json());
  expect(body).toMatchObject({
    type: 'urn:clearance:problem:device-certificate-required',
    reason: 'DEVICE_CERTIFICATE_REQUIRED',
  });
  expect(body.detail).toMatch(/not a CA|may not issue/);
  // Nothing was enrolled for the minted certificate.
  const admin = await fetch(`${harness.gateway.url}/v1/admin/devices`, {
    headers: { authorization: `Bearer ${harness.gateway.adminToken}` },
    dispatcher: agents.at(-1),
  } as RequestInit);
  expect(JSON.stringify(await admin.json())).not.toContain('personal-laptop');
}

describe('a device certificate used as a CA', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    const tls = await issueCertificate(serverCa, 'gateway.lab.example', { usage: 'server' });
    harness = await startGatewayHarness({
      tls: { key: tls.keyPem, cert: tls.certPem },
      deviceTrust: { enrolmentPolicy: 'certificate', deviceCertificates: { ca: deviceCa.certPem } },
    });
  });
  afterAll(async () => harness.close());

  it('is refused over mutual TLS when the genuine certificate is sent as the intermediate', async () => {
    const send = tlsFetch(`${minted.certPem}\n${genuine.certPem}\n`, minted.keyPem);
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create(), send);
    const token = await harness.idp.mint(persona);
    const response = await client.requestSession(token, await client.challenge(token));
    await expectCertificateRefusal(harness, response);
  });

  it('still admits the genuine certificate itself', async () => {
    const send = tlsFetch(genuine.certPem, genuine.keyPem);
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create(), send);
    const token = await harness.idp.mint(persona);
    const response = await client.requestSession(token, await client.challenge(token));
    expect(response.status).toBe(200);
  });
});
