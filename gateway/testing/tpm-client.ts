import { randomBytes } from 'node:crypto';
import { AttestationCredential, attestDeviceKey, type TpmSessionEvidence } from '../../main/device/attestation';
import type { KeyAttestor } from '../../main/device/key';

export type { TpmSessionEvidence };

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/** Sends the TPM's endorsement to `POST /v1/device/attestation`; the raw response. */
export async function requestCredential(
  gatewayUrl: string,
  idpToken: string,
  nonce: string,
  endorsement: { readonly ekCertificate: Uint8Array; readonly attestationKeyPublic: Uint8Array },
): Promise<Response> {
  return postAttestation(gatewayUrl, idpToken, {
    nonce,
    ek_certificate: b64(endorsement.ekCertificate),
    ak_public: b64(endorsement.attestationKeyPublic),
  });
}

/**
 * Asks for `count` credentials in a row, each for a fresh nonce, at the gateways named in turn;
 * the statuses, and the last response (its body read).
 */
export async function requestCredentials(
  gatewayUrls: readonly string[],
  idpToken: string,
  count: number,
  endorsement: { readonly ekCertificate: Uint8Array; readonly attestationKeyPublic: Uint8Array },
): Promise<{ readonly statuses: number[]; readonly last: Response | undefined }> {
  const statuses: number[] = [];
  let last: Response | undefined;
  for (let i = 0; i < count; i++) {
    const url = gatewayUrls[i % gatewayUrls.length]!;
    last = await requestCredential(url, idpToken, randomBytes(32).toString('base64url'), endorsement);
    statuses.push(last.status);
    await last.text();
  }
  return { statuses, last };
}

function postAttestation(gatewayUrl: string, idpToken: string, body: object): Promise<Response> {
  return fetch(`${gatewayUrl}/v1/device/attestation`, {
    method: 'POST',
    headers: { authorization: `Bearer ${idpToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * The client's half of TPM key attestation for `nonce` (the app's own `attestDeviceKey`), with
 * the credential fetched directly; returns the session body's `attestation`. Throws when the
 * gateway refuses.
 */
export async function attestWithTpm(
  gatewayUrl: string,
  idpToken: string,
  nonce: string,
  attestor: KeyAttestor,
  qualifyingData: Uint8Array = Buffer.from(nonce, 'base64url'),
): Promise<TpmSessionEvidence> {
  return attestDeviceKey(
    attestor,
    nonce,
    async (body) => {
      const response = await postAttestation(gatewayUrl, idpToken, body);
      if (!response.ok) throw new Error(`attestation refused: ${response.status} ${await response.text()}`);
      return AttestationCredential.parse(await response.json());
    },
    qualifyingData,
  );
}
