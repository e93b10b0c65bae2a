import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeCommandRunner } from '../../../main/node/adapters';
import type { HardwareKeyHandle } from '../../../main/device/key';
import { TpmKeyProvider } from '../../../main/device/tpm/tpm2-tools';
import { ProblemDetails } from '../../../shared/problem';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas } from '../../testing/identity-provider';
import { startSoftwareTpm, type SoftwareTpm } from '../../testing/swtpm';
import { attestWithTpm, requestCredential } from '../../testing/tpm-client';

let trusted: SoftwareTpm;
let sibling: SoftwareTpm;
let untrusted: SoftwareTpm;
let harness: GatewayHarness;
let keyDir: string;
const persona = testPersonas.usResearcher;

async function openKey(tpm: SoftwareTpm, name: string, attributes?: string): Promise<HardwareKeyHandle> {
  const provider = new TpmKeyProvider({
    commands: new NodeCommandRunner(),
    folder: join(keyDir, name),
    tcti: tpm.tcti,
    ...(attributes ? { deviceKeyAttributes: attributes } : {}),
  });
  const handle = await provider.openOrCreate();
  if (!handle?.attestor) throw new Error('the TPM provider gave no attestable key');
  return handle;
}

async function clientFor(handle: HardwareKeyHandle) {
  const device = await TestDevice.withSigner({ ...handle.publicJwk }, (input) => handle.sign(input));
  const client = new GatewayTestClient(harness.gateway.url, device);
  const token = await harness.idp.mint(persona);
  const nonce = await client.challenge(token);
  return { client, token, nonce, device };
}

async function refusedAt(response: Response, step: string) {
  expect(response.status).toBe(403);
  const body = ProblemDetails.parse(await response.json());
  expect(body).toMatchObject({
    reason: 'DEVICE_ATTESTATION_FAILED',
    step,
    type: expect.stringContaining('attestation'),
  });
  return body;
}

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'clearance-tpm-keys-'));
  trusted = await startSoftwareTpm();
  sibling = await startSoftwareTpm({ caDir: trusted.caDir });
  untrusted = await startSoftwareTpm();
  harness = await startGatewayHarness({
    deviceTrust: { enrolmentPolicy: 'tpm', tpmManufacturerRoots: [trusted.rootCaPem, trusted.issuerCaPem] },
  });
}, 120_000);
afterAll(async () => {
  await harness?.close();
  await Promise.all([trusted?.close(), sibling?.close(), untrusted?.close()]);
  rmSync(keyDir, { recursive: true, force: true });
});

describe('TPM key attestation through the real gateway', () => {
  it('enrols an attested TPM key as hardware, keyed by its EK certificate, and Orion 2 Secure answers', async () => {
    const handle = await openKey(trusted, 'good');
    const { client, token, nonce, device } = await clientFor(handle);
    const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!);
    const session = await client.acceptSession(
      await client.requestSession(token, nonce, { assurance: 'hardware' }, { attestation }),
    );
    expect(session.device.assurance).toBe('hardware');
    expect(session.device.id).toMatch(/^tpm-ek:[0-9a-f]{64}$/);
    const enrolled = await harness.gateway.devices.find(persona.id, device.jkt);
    expect(enrolled).toMatchObject({ assurance: 'hardware', deviceId: session.device.id });

    const reply = await client.request('POST', '/v1/chat/completions', {
      body: { model: 'orion-2-secure', messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(reply.status).toBe(200);
    const document = await client.entitlements();
    expect((document.claims.device as { assurance: string }).assurance).toBe('hardware');
  }, 60_000);

  it('refuses a software key under the tpm policy, even when it claims nothing', async () => {
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const token = await harness.idp.mint(persona);
    await refusedAt(await client.requestSession(token, await client.challenge(token)), 'missing');
    expect(await harness.gateway.devices.find(persona.id, client.device.jkt)).toBeUndefined();
  });

  it('refuses an EK certificate from a CA that is not a configured manufacturer root', async () => {
    const handle = await openKey(untrusted, 'untrusted');
    const { token, nonce } = await clientFor(handle);
    const response = await requestCredential(harness.gateway.url, token, nonce, await handle.attestor!.endorsement());
    const body = await refusedAt(response, 'ek-certificate');
    expect(body.detail).toContain('trusted');
  }, 60_000);

  it('refuses an attestation key that fails credential activation (the answer comes from another TPM)', async () => {
    const real = await openKey(trusted, 'victim');
    const other = await openKey(sibling, 'impostor');
    const { client, token, nonce } = await clientFor(other);
    // The impostor presents the real TPM's EK certificate with its own attestation key.
    const endorsement = {
      ekCertificate: (await real.attestor!.endorsement()).ekCertificate,
      attestationKeyPublic: (await other.attestor!.endorsement()).attestationKeyPublic,
    };
    const response = await requestCredential(harness.gateway.url, token, nonce, endorsement);
    expect(response.status).toBe(200);
    const credential = (await response.json()) as { credential_blob: string; encrypted_secret: string };
    const parts = {
      credentialBlob: Buffer.from(credential.credential_blob, 'base64url'),
      encryptedSecret: Buffer.from(credential.encrypted_secret, 'base64url'),
    };
    await expect(other.attestor!.activateAndCertify(parts, Buffer.from(nonce, 'base64url'))).rejects.toThrow();
    // Its best answer: a guessed secret with an otherwise valid certification from its own TPM.
    const own = await attestWithTpm(harness.gateway.url, token, nonce, other.attestor!);
    const forged = { ...own, secret: Buffer.alloc(32, 7).toString('base64url') };
    const session = await client.requestSession(token, nonce, { assurance: 'hardware' }, { attestation: forged });
    await refusedAt(session, 'credential-activation');
  }, 60_000);

  it('refuses a certification over another nonce', async () => {
    const handle = await openKey(trusted, 'good');
    const { client, token, nonce } = await clientFor(handle);
    const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!, Buffer.alloc(32, 1));
    const session = await client.requestSession(token, nonce, { assurance: 'hardware' }, { attestation });
    await refusedAt(session, 'certification');
  }, 60_000);

  it('refuses a certification of another key than the device key sent', async () => {
    const handle = await openKey(trusted, 'good');
    const second = await openKey(trusted, 'second');
    const { client, token, nonce } = await clientFor(second);
    const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!);
    // The certification is of the first key; the body names the second (whose key signs the DPoP proof).
    const swapped = {
      ...attestation,
      device_public: (await readFile(join(keyDir, 'second', 'device.pub'))).toString('base64url'),
    };
    const session = await client.requestSession(token, nonce, { assurance: 'hardware' }, { attestation: swapped });
    await refusedAt(session, 'certification');
    expect(await harness.gateway.devices.find(persona.id, client.device.jkt)).toBeUndefined();
  }, 60_000);

  it('refuses a device key without fixedTPM', async () => {
    const handle = await openKey(trusted, 'movable', 'sensitivedataorigin|userwithauth|sign');
    const { client, token, nonce } = await clientFor(handle);
    const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!);
    const session = await client.requestSession(token, nonce, { assurance: 'hardware' }, { attestation });
    await refusedAt(session, 'device-key');
  }, 60_000);
});
