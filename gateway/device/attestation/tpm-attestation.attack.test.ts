import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HardwareKeyHandle } from '../../../main/device/key';
import { TpmKeyProvider } from '../../../main/device/tpm/tpm2-tools';
import { NodeCommandRunner } from '../../../main/node/adapters';
import { ProblemDetails } from '../../../shared/problem';
import { GatewayTestClient, TestDevice } from '../../testing/device-client';
import { startGatewayHarness, type GatewayHarness } from '../../testing/gateway-harness';
import { testPersonas } from '../../testing/identity-provider';
import { startSoftwareTpm, type SoftwareTpm } from '../../testing/swtpm';
import { attestWithTpm, requestCredential } from '../../testing/tpm-client';

/**
 * An attacker who owns a TPM (a genuine EK certificate) sends TPM structures the gateway's readers
 * accept but cannot name: each must be a 403 `DEVICE_ATTESTATION_FAILED` with its step, never a 500.
 */
let tpm: SoftwareTpm;
let harness: GatewayHarness;
let keyDir: string;
let deviceKey: HardwareKeyHandle;
const persona = testPersonas.fnResearcher;

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'clearance-tpm-attack-'));
  tpm = await startSoftwareTpm();
  harness = await startGatewayHarness({
    deviceTrust: { enrolmentPolicy: 'tpm', tpmManufacturerRoots: [tpm.rootCaPem, tpm.issuerCaPem] },
  });
  const provider = new TpmKeyProvider({ commands: new NodeCommandRunner(), folder: keyDir, tcti: tpm.tcti });
  const handle = await provider.openOrCreate();
  if (!handle?.attestor) throw new Error('the TPM provider gave no attestable key');
  deviceKey = handle;
}, 120_000);
afterAll(async () => {
  await harness?.close();
  await tpm?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

/** A TPM2B_PUBLIC (or bare TPMT_PUBLIC) with its nameAlg set to SHA-1 (0x0004). */
function withSha1Name(area: Uint8Array): Buffer {
  const bytes = Buffer.from(area);
  const sizePrefixed = bytes.readUInt16BE(0) === bytes.length - 2;
  bytes.writeUInt16BE(0x0004, sizePrefixed ? 4 : 2);
  return bytes;
}

async function expectAttestationRefusal(response: Response, step: string): Promise<void> {
  expect(response.status).toBe(403);
  const body = ProblemDetails.parse(await response.json());
  expect(body).toMatchObject({ reason: 'DEVICE_ATTESTATION_FAILED', step });
  expect(await harness.gateway.devices.listForUser(persona.id)).toEqual([]);
  expect(harness.logLines.filter((line) => line.includes('internal error'))).toEqual([]);
}

describe('TPM structures with a name algorithm other than SHA-256', () => {
  it('an attestation key with a SHA-1 name is refused at step format, not a 500', async () => {
    const endorsement = await deviceKey.attestor!.endorsement();
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    const idpToken = await harness.idp.mint(persona);
    const response = await requestCredential(harness.gateway.url, idpToken, await client.challenge(idpToken), {
      ekCertificate: endorsement.ekCertificate,
      attestationKeyPublic: withSha1Name(endorsement.attestationKeyPublic),
    });
    await expectAttestationRefusal(response, 'format');
  });

  it('a device public area with a SHA-1 name in a genuine attestation is refused, not a 500', async () => {
    const device = await TestDevice.withSigner({ ...deviceKey.publicJwk }, (input) => deviceKey.sign(input));
    const client = new GatewayTestClient(harness.gateway.url, device);
    const idpToken = await harness.idp.mint(persona);
    const nonce = await client.challenge(idpToken);
    const attestation = await attestWithTpm(harness.gateway.url, idpToken, nonce, deviceKey.attestor!);
    const forged = {
      ...attestation,
      device_public: withSha1Name(Buffer.from(attestation.device_public, 'base64url')).toString('base64url'),
    };
    const response = await client.requestSession(idpToken, nonce, { assurance: 'hardware' }, { attestation: forged });
    await expectAttestationRefusal(response, 'device-key');
  });
});
