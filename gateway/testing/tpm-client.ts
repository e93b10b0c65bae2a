import type { KeyAttestor } from '../../main/device/key';

/** The `attestation` member of a session body, as the desktop client sends it. */
export interface TpmSessionEvidence {
  readonly format: 'tpm2';
  readonly secret: string;
  readonly device_public: string;
  readonly certify_info: string;
  readonly certify_signature: string;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/** Sends the TPM's endorsement to `POST /v1/device/attestation`; the raw response. */
export async function requestCredential(
  gatewayUrl: string,
  idpToken: string,
  nonce: string,
  endorsement: { readonly ekCertificate: Uint8Array; readonly attestationKeyPublic: Uint8Array },
): Promise<Response> {
  return fetch(`${gatewayUrl}/v1/device/attestation`, {
    method: 'POST',
    headers: { authorization: `Bearer ${idpToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      nonce,
      ek_certificate: b64(endorsement.ekCertificate),
      ak_public: b64(endorsement.attestationKeyPublic),
    }),
  });
}

/**
 * The client's half of TPM key attestation for `nonce`: endorsement → credential → activation and
 * certification; returns the session body's `attestation`. Throws when the gateway refuses.
 */
export async function attestWithTpm(
  gatewayUrl: string,
  idpToken: string,
  nonce: string,
  attestor: KeyAttestor,
  qualifyingData: Uint8Array = Buffer.from(nonce, 'base64url'),
): Promise<TpmSessionEvidence> {
  const response = await requestCredential(gatewayUrl, idpToken, nonce, await attestor.endorsement());
  if (!response.ok) throw new Error(`attestation refused: ${response.status} ${await response.text()}`);
  const credential = (await response.json()) as { credential_blob: string; encrypted_secret: string };
  const result = await attestor.activateAndCertify(
    {
      credentialBlob: Buffer.from(credential.credential_blob, 'base64url'),
      encryptedSecret: Buffer.from(credential.encrypted_secret, 'base64url'),
    },
    qualifyingData,
  );
  return {
    format: 'tpm2',
    secret: b64(result.secret),
    device_public: b64(result.devicePublic),
    certify_info: b64(result.certifyInfo),
    certify_signature: b64(result.certifySignature),
  };
}
