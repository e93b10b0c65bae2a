import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import type { HardwareKeyHandle } from '../main/device/key';
import { NodeCommandRunner } from '../main/node/adapters';
import { TpmKeyProvider } from '../main/device/tpm/tpm2-tools';
import { certifySessionKey } from '../main/session/session-key';
import { GatewayTestClient, TestDevice } from '../gateway/testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../gateway/testing/gateway-harness';
import { testPersonas } from '../gateway/testing/identity-provider';
import { startSoftwareTpm, type SoftwareTpm } from '../gateway/testing/swtpm';
import { attestWithTpm } from '../gateway/testing/tpm-client';

/**
 * The cost of a TPM-held device key (swtpm through tpm2-tools, as the Linux client drives it):
 * one ES256 signature, a gateway call whose DPoP proof the TPM key signs against one signed by a
 * session key the TPM key certified, and a session open (credential activation, certification,
 * session) through the real gateway, with and without a session key.
 */
let tpm: SoftwareTpm;
let harness: GatewayHarness;
let handle: HardwareKeyHandle;
let folder: string;
/** A session whose DPoP proofs the TPM key signs, and one with a software key, on the same gateway. */
let tpmClient: GatewayTestClient;
let softwareClient: GatewayTestClient;
/** A TPM-attested session whose proofs a session key signs (what the app does). */
let sessionKeyClient: GatewayTestClient;

/**
 * Opens an attested session as the app does: a fresh session key signs the proof and the posture
 * report, the TPM key signs only the session key's certification.
 */
async function openWithSessionKey(): Promise<GatewayTestClient> {
  const sessionKey = await TestDevice.create({ assurance: 'hardware' });
  const client = new GatewayTestClient(harness.gateway.url, sessionKey);
  const token = await harness.idp.mint(testPersonas.usResearcher);
  const nonce = await client.challenge(token);
  const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!);
  const certification = await certifySessionKey(handle, { thumbprint: sessionKey.jkt }, nonce, Date.now());
  const response = await client.requestSession(
    token,
    nonce,
    { assurance: 'hardware' },
    { attestation, session_key: certification },
  );
  await client.acceptSession(response);
  return client;
}

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'clearance-tpm-bench-'));
  tpm = await startSoftwareTpm();
  harness = await startGatewayHarness({
    deviceTrust: { enrolmentPolicy: 'tpm', tpmManufacturerRoots: [tpm.rootCaPem, tpm.issuerCaPem] },
    // Every session here is the same person on the same device key: lift the per-minute quotas.
    limits: {
      perAddress: { max: 1_000_000, windowMs: 60_000 },
      perUser: { max: 1_000_000, windowMs: 60_000 },
      perDevice: { max: 1_000_000, windowMs: 60_000 },
      challengesPerUser: 1000,
    },
  });
  const provider = new TpmKeyProvider({ commands: new NodeCommandRunner(), folder, tcti: tpm.tcti });
  handle = (await provider.openOrCreate())!;
  const device = await TestDevice.withSigner({ ...handle.publicJwk }, (data) => handle.sign(data));
  tpmClient = new GatewayTestClient(harness.gateway.url, device);
  const token = await harness.idp.mint(testPersonas.usResearcher);
  const nonce = await tpmClient.challenge(token);
  const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!);
  await tpmClient.acceptSession(
    await tpmClient.requestSession(token, nonce, { assurance: 'hardware' }, { attestation }),
  );
  sessionKeyClient = await openWithSessionKey();
  const open = await startGatewayHarness({
    limits: {
      perAddress: { max: 1_000_000, windowMs: 60_000 },
      perUser: { max: 1_000_000, windowMs: 60_000 },
      perDevice: { max: 1_000_000, windowMs: 60_000 },
    },
  });
  openGateway = open;
  softwareClient = await open.signIn(testPersonas.usResearcher);
}, 120_000);
let openGateway: GatewayHarness | undefined;
afterAll(async () => {
  await harness?.close();
  await openGateway?.close();
  await tpm?.close();
  rmSync(folder, { recursive: true, force: true });
});

const input = new TextEncoder().encode('eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0');

describe('TPM device key', () => {
  bench(
    'ES256 signature by the TPM (tpm2_sign + flush)',
    async () => {
      await handle.sign(input);
    },
    { iterations: 20, warmupIterations: 2 },
  );
  bench(
    'a gateway call (GET /v1/models) whose DPoP proof the TPM key signs',
    async () => {
      const response = await tpmClient.request('GET', '/v1/models');
      if (response.status !== 200) throw new Error(`models failed: ${response.status}`);
      await response.arrayBuffer();
    },
    { iterations: 20, warmupIterations: 2 },
  );
  bench(
    'the same call, DPoP proof by the session key the TPM key certified',
    async () => {
      const response = await sessionKeyClient.request('GET', '/v1/models');
      if (response.status !== 200) throw new Error(`models failed: ${response.status}`);
      await response.arrayBuffer();
    },
    { iterations: 20, warmupIterations: 2 },
  );
  bench(
    'the same call with a software device key',
    async () => {
      const response = await softwareClient.request('GET', '/v1/models');
      if (response.status !== 200) throw new Error(`models failed: ${response.status}`);
      await response.arrayBuffer();
    },
    { iterations: 20, warmupIterations: 2 },
  );
  bench(
    'session open, TPM key signs proof and report (endorsement, activation, certification, session)',
    async () => {
      const device = await TestDevice.withSigner({ ...handle.publicJwk }, (data) => handle.sign(data));
      const client = new GatewayTestClient(harness.gateway.url, device);
      const token = await harness.idp.mint(testPersonas.usResearcher);
      const nonce = await client.challenge(token);
      const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!);
      const response = await client.requestSession(token, nonce, { assurance: 'hardware' }, { attestation });
      if (response.status !== 200) throw new Error(`attested enrolment failed: ${response.status}`);
    },
    { iterations: 10, warmupIterations: 1 },
  );
  bench(
    'session open with a session key (the same attestation, one TPM signature certifying the session key)',
    async () => {
      await openWithSessionKey();
    },
    { iterations: 10, warmupIterations: 1 },
  );
});
