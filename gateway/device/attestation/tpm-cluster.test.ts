import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HardwareKeyHandle } from '../../../main/device/key';
import { TpmKeyProvider } from '../../../main/device/tpm/tpm2-tools';
import { NodeCommandRunner } from '../../../main/node/adapters';
import { ProblemDetails } from '../../../shared/problem';
import { TestCluster, type ClusterInstance } from '../../testing/cluster';
import { TestDevice } from '../../testing/device-client';
import { testPersonas } from '../../testing/identity-provider';
import { startSoftwareTpm, type SoftwareTpm } from '../../testing/swtpm';
import {
  attestWithTpm,
  requestCredential,
  requestCredentials,
  type TpmSessionEvidence,
} from '../../testing/tpm-client';

/**
 * TPM attestation behind a load balancer: two instances on one PostgreSQL and one Redis (real
 * servers), a software TPM with a manufacturer-signed EK. The credential request and the session
 * request of one sign-in may reach different instances; the credential must be redeemable at
 * either, once, and one person's share of credentials in flight counts across instances.
 */
type Instance = ClusterInstance;

let tpm: SoftwareTpm;
let cluster: TestCluster;
let deviceKey: HardwareKeyHandle;
let device: TestDevice;
const a = () => cluster.instances[0]!;
const b = () => cluster.instances[1]!;

beforeAll(async () => {
  tpm = await startSoftwareTpm();
  cluster = await TestCluster.start(2, {
    deviceTrust: { enrolmentPolicy: 'tpm', tpmManufacturerRoots: [tpm.rootCaPem, tpm.issuerCaPem] },
  });
  const provider = new TpmKeyProvider({
    commands: new NodeCommandRunner(),
    folder: join(cluster.dir, 'tpm'),
    tcti: tpm.tcti,
  });
  const handle = await provider.openOrCreate();
  if (!handle?.attestor) throw new Error('the TPM provider gave no attestable key');
  deviceKey = handle;
  device = await TestDevice.withSigner({ ...deviceKey.publicJwk }, (input) => deviceKey.sign(input));
}, 180_000);

afterAll(async () => {
  await cluster?.close();
  await tpm?.close();
});

async function challenge(at: Instance, idpToken: string): Promise<string> {
  const response = await fetch(`${at.address}/v1/device/challenge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${idpToken}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { nonce: string }).nonce;
}

/** `POST /v1/session` at `at`, with the TPM key's proof for the public URL and a hardware claim. */
async function session(at: Instance, idpToken: string, nonce: string, attestation: TpmSessionEvidence) {
  return fetch(`${at.address}/v1/session`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${idpToken}`,
      dpop: await device.proof('POST', `${cluster.publicUrl}/v1/session`),
      'content-type': 'application/json',
    },
    body: JSON.stringify({ posture: await device.posture(nonce, { assurance: 'hardware' }), attestation }),
  });
}

describe('TPM attestation across two instances', () => {
  it('a credential issued by instance A is activated in a session opened at instance B, which records the TPM', async () => {
    const idpToken = await cluster.idp.mint(testPersonas.usResearcher);
    const nonce = await challenge(a(), idpToken);
    const attestation = await attestWithTpm(a().address, idpToken, nonce, deviceKey.attestor!);

    const response = await session(b(), idpToken, nonce, attestation);

    expect(response.status).toBe(200);
    const [enrolment] = await a().gateway.devices.listForUser(testPersonas.usResearcher.id);
    expect(enrolment).toMatchObject({ assurance: 'hardware', jkt: device.jkt });
    expect(enrolment?.deviceId).toMatch(/^tpm-ek:/);
  });

  it('the same credential cannot be used again at the other instance', async () => {
    const idpToken = await cluster.idp.mint(testPersonas.usResearcher);
    const nonce = await challenge(b(), idpToken);
    const attestation = await attestWithTpm(b().address, idpToken, nonce, deviceKey.attestor!);
    const first = await session(a(), idpToken, nonce, attestation);
    expect(first.status).toBe(200);
    await first.text();

    // A second sign-in reuses the answered credential with a fresh nonce at the other instance.
    const again = await challenge(b(), idpToken);
    const replay = await session(b(), idpToken, again, attestation);

    expect(replay.status).toBe(403);
    expect(ProblemDetails.parse(await replay.json())).toMatchObject({
      reason: 'DEVICE_ATTESTATION_FAILED',
      step: 'credential-activation',
    });
  });

  it('one person’s credentials in flight count across instances: the eleventh is a 429 wherever it lands', async () => {
    const endorsement = await deviceKey.attestor!.endorsement();
    const idpToken = await cluster.idp.mint(testPersonas.contractor);
    const { statuses, last } = await requestCredentials([a().address, b().address], idpToken, 11, endorsement);
    expect(statuses).toEqual([...Array(10).fill(200), 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another person is not affected.
    const other = await cluster.idp.mint(testPersonas.fnResearcher);
    const theirs = await requestCredential(b().address, other, randomBytes(32).toString('base64url'), {
      ekCertificate: endorsement.ekCertificate,
      attestationKeyPublic: endorsement.attestationKeyPublic,
    });
    expect(theirs.status).toBe(200);
  });
});
