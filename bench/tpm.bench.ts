import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import type { HardwareKeyHandle } from '../main/device/key';
import { NodeCommandRunner } from '../main/node/adapters';
import { TpmKeyProvider } from '../main/device/tpm/tpm2-tools';
import { GatewayTestClient, TestDevice } from '../gateway/testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../gateway/testing/gateway-harness';
import { testPersonas } from '../gateway/testing/identity-provider';
import { startSoftwareTpm, type SoftwareTpm } from '../gateway/testing/swtpm';
import { attestWithTpm } from '../gateway/testing/tpm-client';

/**
 * The cost of a TPM-held device key (swtpm through tpm2-tools, as the Linux client drives it):
 * one ES256 signature (each DPoP proof) and one attested enrolment (credential activation,
 * certification, session) through the real gateway.
 */
let tpm: SoftwareTpm;
let harness: GatewayHarness;
let handle: HardwareKeyHandle;
let folder: string;
/** A session whose DPoP proofs the TPM key signs, and one with a software key, on the same gateway. */
let tpmClient: GatewayTestClient;
let softwareClient: GatewayTestClient;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'clearance-tpm-bench-'));
  tpm = await startSoftwareTpm();
  harness = await startGatewayHarness({
    deviceTrust: { enrolmentPolicy: 'tpm', tpmManufacturerRoots: [tpm.rootCaPem, tpm.issuerCaPem] },
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
  const open = await startGatewayHarness();
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
    'the same call with a software device key',
    async () => {
      const response = await softwareClient.request('GET', '/v1/models');
      if (response.status !== 200) throw new Error(`models failed: ${response.status}`);
      await response.arrayBuffer();
    },
    { iterations: 20, warmupIterations: 2 },
  );
  bench(
    'attested enrolment (endorsement, credential activation, certification, session)',
    async () => {
      const device = await TestDevice.withSigner({ ...handle.publicJwk }, (data) => handle.sign(data));
      const client = new GatewayTestClient(harness.gateway.url, device);
      const token = await harness.idp.mint(testPersonas.usResearcher);
      const nonce = await client.challenge(token);
      const attestation = await attestWithTpm(harness.gateway.url, token, nonce, handle.attestor!);
      const response = await client.requestSession(token, nonce, { assurance: 'hardware' }, { attestation });
      if (response.status !== 200) throw new Error(`attested enrolment failed: ${response.status}`);
    },
    { iterations: 5, warmupIterations: 1 },
  );
});
