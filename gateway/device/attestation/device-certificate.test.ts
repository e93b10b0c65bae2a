import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../../shared/problem';
import { startGateway } from '../../server';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { createTestCa, issueCertificate, type IssuedCertificate } from '../../testing/device-certificates';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas } from '../../testing/identity-provider';
import { DeviceCertificateVerifier } from './device-certificate';

const persona = testPersonas.usResearcher;
let deviceCa: IssuedCertificate;
let rogueCa: IssuedCertificate;
let serverCa: IssuedCertificate;
let managedDevice: IssuedCertificate;
let rogueDevice: IssuedCertificate;
let serverOnly: IssuedCertificate;
let expired: IssuedCertificate;
const agents: Agent[] = [];

beforeAll(async () => {
  [deviceCa, rogueCa, serverCa] = await Promise.all([
    createTestCa('Lab Device CA'),
    createTestCa('Someone Else CA'),
    createTestCa('Gateway TLS CA'),
  ]);
  [managedDevice, rogueDevice, serverOnly, expired] = await Promise.all([
    issueCertificate(deviceCa, 'laptop-0042.lab.example'),
    issueCertificate(rogueCa, 'laptop-0042.lab.example'),
    issueCertificate(deviceCa, 'not-a-client.lab.example', { usage: 'server' }),
    issueCertificate(deviceCa, 'old-laptop.lab.example', { validUntil: new Date(Date.now() - 3_600_000) }),
  ]);
});

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.close()));
});

/** `fetch` over TLS trusting the gateway's CA, presenting `client` (a key and certificate file) if given. */
function tlsFetch(client?: IssuedCertificate): typeof fetch {
  const agent = new Agent({
    connect: { ca: serverCa.certPem, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) },
  });
  agents.push(agent);
  return ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
}

async function refusedForCertificate(response: Response): Promise<ProblemDetails> {
  expect(response.status).toBe(403);
  const body = ProblemDetails.parse(await response.json());
  expect(body).toMatchObject({
    type: 'urn:clearance:problem:device-certificate-required',
    reason: 'DEVICE_CERTIFICATE_REQUIRED',
  });
  return body;
}

async function askForSession(harness: GatewayHarness, send: typeof fetch, headers: Record<string, string> = {}) {
  const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create(), (input, init) =>
    send(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
  );
  const token = await harness.idp.mint(persona);
  const response = await client.requestSession(token, await client.challenge(token));
  return { client, response };
}

describe('enrolment policy certificate, by mutual TLS to the gateway itself', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    const tls = await issueCertificate(serverCa, 'gateway.lab.example', { usage: 'server' });
    harness = await startGatewayHarness({
      tls: { key: tls.keyPem, cert: tls.certPem },
      deviceTrust: { enrolmentPolicy: 'certificate', deviceCertificates: { ca: deviceCa.certPem } },
    });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('enrols a device presenting a certificate from the configured CA, recorded managed with its subject and serial', async () => {
    expect(harness.gateway.url).toMatch(/^https:/);
    const { client, response } = await askForSession(harness, tlsFetch(managedDevice));
    expect(response.status).toBe(200);
    await client.acceptSession(response);
    const [record] = await harnessEnrolments(harness, client.device.jkt);
    expect(record).toMatchObject({
      status: 'approved',
      managed: 'verified',
      certificate: {
        subject: 'CN=laptop-0042.lab.example',
        serial: managedDevice.certificate.serialNumber,
        via: 'tls',
      },
    });
    expect((await client.request('GET', '/v1/models')).status).toBe(200);
  });

  it('refuses a device without a client certificate, and does not enrol it', async () => {
    const { client, response } = await askForSession(harness, tlsFetch());
    const body = await refusedForCertificate(response);
    expect(body.detail).toContain('no client certificate was presented');
    expect(await harness.gateway.devices.find(persona.id, client.device.jkt)).toBeUndefined();
  });

  it('refuses a certificate from another CA, even with the same subject', async () => {
    const { client, response } = await askForSession(harness, tlsFetch(rogueDevice));
    const body = await refusedForCertificate(response);
    expect(body.detail).toContain("not from the organisation's device CA");
    expect(await harness.gateway.devices.find(persona.id, client.device.jkt)).toBeUndefined();
  });

  it('refuses an expired certificate and one not issued for client authentication', async () => {
    const old = await askForSession(harness, tlsFetch(expired));
    expect((await refusedForCertificate(old.response)).detail).toContain('is not valid at');
    const server = await askForSession(harness, tlsFetch(serverOnly));
    expect((await refusedForCertificate(server.response)).detail).toContain('not for client authentication');
    expect(await harness.gateway.devices.find(persona.id, server.client.device.jkt)).toBeUndefined();
  });

  it('ignores a forwarded certificate header from a peer that is not a configured proxy', async () => {
    const xfcc = `Hash=00;Cert="${encodeURIComponent(managedDevice.certPem)}";Subject="CN=laptop-0042.lab.example"`;
    const { client, response } = await askForSession(harness, tlsFetch(), { 'x-forwarded-client-cert': xfcc });
    const body = await refusedForCertificate(response);
    expect(body.detail).toContain('not a trusted proxy');
    expect(await harness.gateway.devices.find(persona.id, client.device.jkt)).toBeUndefined();
  });
});

describe('enrolment policy certificate, behind a TLS-terminating proxy that forwards the certificate', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness({
      deviceTrust: {
        enrolmentPolicy: 'certificate',
        deviceCertificates: { ca: deviceCa.certPem, trustedProxy: { addresses: ['127.0.0.1'], format: 'xfcc' } },
      },
    });
  });
  afterAll(async () => {
    await harness?.close();
  });

  const xfcc = (certificate: IssuedCertificate) =>
    // Envoy appends one element per hop; the last is the trusted proxy's own.
    `By=spiffe://edge;Cert="${encodeURIComponent(rogueDevice.certPem)}",` +
    `By=spiffe://gateway;Hash=ab;Cert="${encodeURIComponent(certificate.certPem)}";Subject="${certificate.certificate.subject}"`;

  it('enrols a device whose certificate the proxy forwards in x-forwarded-client-cert', async () => {
    const { client, response } = await askForSession(harness, fetch, {
      'x-forwarded-client-cert': xfcc(managedDevice),
    });
    expect(response.status).toBe(200);
    const [record] = await harnessEnrolments(harness, client.device.jkt);
    expect(record).toMatchObject({
      managed: 'verified',
      certificate: {
        subject: 'CN=laptop-0042.lab.example',
        serial: managedDevice.certificate.serialNumber,
        via: 'proxy',
      },
    });
  });

  it('refuses a forwarded certificate from another CA, and a request the proxy sent without one', async () => {
    const rogue = await askForSession(harness, fetch, { 'x-forwarded-client-cert': xfcc(rogueDevice) });
    expect((await refusedForCertificate(rogue.response)).detail).toContain("not from the organisation's device CA");
    const none = await askForSession(harness, fetch);
    expect((await refusedForCertificate(none.response)).detail).toContain('no client certificate');
    expect(await harness.gateway.devices.find(persona.id, rogue.client.device.jkt)).toBeUndefined();
  });
});

describe('DeviceCertificateVerifier', () => {
  const proxy = { remoteAddress: '::ffff:10.0.0.5' };

  it('reads RFC 9440 client-cert and nginx-style URL-encoded PEM from a trusted proxy', async () => {
    const rfc9440 = new DeviceCertificateVerifier({
      ca: deviceCa.certPem,
      trustedProxy: { addresses: ['10.0.0.5'], format: 'client-cert' },
    });
    const der = Buffer.from(managedDevice.certificate.rawData).toString('base64');
    const ok = await rfc9440.verify({ socket: proxy, headers: { 'client-cert': `:${der}:` } });
    expect(ok.verified).toMatchObject({ subject: 'CN=laptop-0042.lab.example', via: 'proxy' });
    const garbled = await rfc9440.verify({ socket: proxy, headers: { 'client-cert': der } });
    expect(garbled.verified).toBeUndefined();

    const pem = new DeviceCertificateVerifier({
      ca: deviceCa.certPem,
      trustedProxy: { addresses: ['10.0.0.5'], format: 'pem' },
    });
    const header = { 'x-ssl-client-cert': encodeURIComponent(managedDevice.certPem) };
    expect((await pem.verify({ socket: proxy, headers: header })).verified?.serial).toBe(
      managedDevice.certificate.serialNumber,
    );
    const elsewhere = await pem.verify({ socket: { remoteAddress: '10.0.0.6' }, headers: header });
    expect(elsewhere).toMatchObject({ detail: expect.stringContaining('not a trusted proxy') });
  });

  it('refuses an x-forwarded-client-cert whose client-sent element leaves a quote open over the proxy’s own', async () => {
    const verifier = new DeviceCertificateVerifier({
      ca: deviceCa.certPem,
      trustedProxy: { addresses: ['10.0.0.5'], format: 'xfcc' },
    });
    // A proxy that passes on the client's header: the client's element opens a quote after a valid
    // certificate, so the proxy's appended element (another CA's certificate) falls inside it.
    const smuggled =
      `Cert="${encodeURIComponent(managedDevice.certPem)}";Subject="x` +
      `,By=spiffe://gateway;Cert="${encodeURIComponent(rogueDevice.certPem)}"`;
    const result = await verifier.verify({ socket: proxy, headers: { 'x-forwarded-client-cert': smuggled } });
    expect(result).toEqual({
      detail: "the trusted proxy's x-forwarded-client-cert header cannot be read: an unclosed quote",
    });
    // Balanced quotes, escaped quotes inside them included, still read.
    const fine = `Hash=00;Cert="${encodeURIComponent(managedDevice.certPem)}";Subject="CN=a \\"b\\""`;
    expect(
      (await verifier.verify({ socket: proxy, headers: { 'x-forwarded-client-cert': fine } })).verified?.serial,
    ).toBe(managedDevice.certificate.serialNumber);
  });

  it('refuses a configuration whose proxy is not an IP address, and a CA bundle without certificates', () => {
    expect(
      () => new DeviceCertificateVerifier({ ca: deviceCa.certPem, trustedProxy: { addresses: ['proxy.lab'] } }),
    ).toThrow(/must be IP addresses/);
    expect(() => new DeviceCertificateVerifier({ ca: 'not a certificate' })).toThrow(/holds no PEM certificate/);
  });

  it('a gateway whose policy requires certificates but that has no CA does not start', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'clearance-cert-policy-'));
    try {
      await expect(
        startGateway({
          stateDir,
          identityProvider: { issuer: 'https://idp.invalid', jwksUri: 'https://idp.invalid/jwks', audience: 'a' },
          discovery: {
            identityProvider: { authority: 'https://idp.invalid', clientId: 'c', scopes: [], protocol: 'OIDC' },
          },
          deviceTrust: { enrolmentPolicy: 'certificate' },
          log: () => {},
        }),
      ).rejects.toThrow(/no device-certificate CA is configured/);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

/** The gateway's enrolment records of the device key `jkt` (`GET /v1/admin/devices`). */
async function harnessEnrolments(harness: GatewayHarness, jkt: string) {
  const send = harness.gateway.url.startsWith('https:') ? tlsFetch() : fetch;
  const response = await send(`${harness.gateway.url}/v1/admin/devices`, {
    headers: { authorization: `Bearer ${harness.gateway.adminToken}` },
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { devices: { jkt: string }[] };
  return body.devices.filter((device) => device.jkt === jkt);
}
