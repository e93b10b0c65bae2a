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
