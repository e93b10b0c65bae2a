import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { startStack, type RunningStack } from '../gateway/stack';
import { createTestCa, issueCertificate, type IssuedCertificate } from '../gateway/testing/device-certificates';
import { startHarness } from './harness/harness';
import { test as base, expect, saveScreenshot, signIn } from './fixtures';

interface Pki {
  readonly gatewayCa: IssuedCertificate;
  readonly deviceCa: IssuedCertificate;
  readonly laptop: IssuedCertificate;
}

/**
 * A demo stack whose gateway terminates TLS itself and admits only devices presenting a
 * certificate from the organisation's device CA (mutual TLS); certificates made for the run.
 */
const test = base.extend<{ readonly presentCertificate: boolean }, { readonly pki: Pki; readonly stack: RunningStack }>(
  {
    pki: [
      // Playwright requires an object pattern for a fixture's first argument, even with no dependencies.
      // eslint-disable-next-line no-empty-pattern
      async ({}, use) => {
        const [gatewayCa, deviceCa] = await Promise.all([
          createTestCa('Lab Gateway CA'),
          createTestCa('Lab Device CA'),
        ]);
        await use({ gatewayCa, deviceCa, laptop: await issueCertificate(deviceCa, 'laptop-0042.lab.example') });
      },
      { scope: 'worker' },
    ],
    stack: [
      async ({ pki }, use) => {
        const tls = await issueCertificate(pki.gatewayCa, 'gateway.lab.example', { usage: 'server' });
        const stack = await startStack({
          stateDir: await mkdtemp(join(tmpdir(), 'clearance-e2e-mtls-stack-')),
          demoTokensPerSecond: 200,
          gatewayTls: { key: tls.keyPem, cert: tls.certPem },
          deviceTrust: { enrolmentPolicy: 'certificate', deviceCertificates: { ca: pki.deviceCa.certPem } },
          log: () => {},
        });
        await use(stack);
        await stack.close();
      },
      { scope: 'worker' },
    ],
    presentCertificate: [true, { option: true }],
    harness: async ({ stack, pki, presentCertificate }, use) => {
      const harness = await startHarness({
        stack,
        tls: {
          gatewayCaPem: pki.gatewayCa.certPem,
          ...(presentCertificate ? { clientCertificate: { cert: pki.laptop.certPem, key: pki.laptop.keyPem } } : {}),
        },
      });
      await use(harness);
      await harness.close();
    },
  },
);

test.describe('a device with the organisation’s certificate (mutual TLS)', () => {
  test('is admitted and recorded as managed with the certificate’s subject', async ({ app, harness, stack, pki }) => {
    expect(stack.gatewayUrl).toMatch(/^https:/);
    await signIn(app, harness, 'Avery Stone');
    await expect(app.getByRole('combobox', { name: 'Model' })).toBeVisible();
    const key = await harness.services.access.keys.load();
    // The admin call over the gateway's TLS, trusting its test CA.
    const agent = new Agent({ connect: { ca: pki.gatewayCa.certPem } });
    const response = await undiciFetch(`${stack.gatewayUrl}/v1/admin/devices`, {
      headers: { authorization: `Bearer ${stack.adminToken}` },
      dispatcher: agent,
    });
    const { devices } = (await response.json()) as { devices: { jkt: string }[] };
    await agent.close();
    expect(devices.find((device) => device.jkt === key.thumbprint)).toMatchObject({
      managed: 'verified',
      certificate: { subject: 'CN=laptop-0042.lab.example', serial: pki.laptop.certificate.serialNumber, via: 'tls' },
    });
  });
});

test.describe('a device without it', () => {
  test.use({ presentCertificate: false });

  test('is stopped with the certificate reason and what to do', async ({ app, harness }) => {
    await signIn(app, harness, 'Avery Stone');
    const gate = app.getByTestId('device-gate');
    await expect(gate.getByRole('heading', { level: 1 })).toHaveText('Managed-device certificate required');
    await expect(gate.getByTestId('device-enrolment')).toContainText('device management');
    await expect(app.getByRole('combobox', { name: 'Model' })).toBeHidden();
    await saveScreenshot(app, 'device-certificate-required');
  });
});
