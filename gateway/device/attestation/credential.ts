import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';

/**
 * TPM2_MakeCredential done by the verifier with Node's crypto (TPM 2.0 Library Part 1, §24,
 * and go-tpm's `credactivation.Generate`): only the TPM holding the endorsement key can recover
 * `secret`, and only for a loaded key whose name is `akName`.
 *
 * For an RSA 2048 EK with the default template (SHA-256 name, AES-128-CFB): the seed is
 * RSA-OAEP-SHA256 encrypted under the EK with the label "IDENTITY\0"; the credential is
 * AES-128-CFB encrypted with KDFa(seed, "STORAGE", akName) and HMACed with KDFa(seed, "INTEGRITY").
 */
export function makeCredential(
  ekPublicKey: KeyObject,
  akName: Uint8Array,
  secret: Uint8Array,
): { readonly credentialBlob: Buffer; readonly encryptedSecret: Buffer } {
  if (ekPublicKey.asymmetricKeyType !== 'rsa') throw new Error('Only an RSA endorsement key is supported');
  if (secret.length > 32) throw new Error('The credential is at most 32 bytes');
  const seed = randomBytes(32);
  const encrypted = publicEncrypt(
    { key: ekPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label('IDENTITY') },
    seed,
  );
  const symKey = kdfa(seed, 'STORAGE', akName, new Uint8Array(), 128);
  const cipher = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(sized(secret)), cipher.final()]);
  const hmacKey = kdfa(seed, 'INTEGRITY', new Uint8Array(), new Uint8Array(), 256);
  const outerHmac = createHmac('sha256', hmacKey).update(encIdentity).update(akName).digest();
  return {
    credentialBlob: sized(Buffer.concat([sized(outerHmac), encIdentity])),
    encryptedSecret: sized(encrypted),
  };
}

/** KDFa with HMAC-SHA256 (TPM 2.0 Library Part 1, §11.4.10.2). */
export function kdfa(key: Uint8Array, use: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Buffer {
  const out: Buffer[] = [];
  const bitsField = Buffer.alloc(4);
  bitsField.writeUInt32BE(bits);
  // Stryker disable next-line EqualityOperator,ArithmeticOperator: a bound that computes more blocks than needed changes nothing, the output is cut to bits / 8 bytes below
  for (let counter = 1; out.length * 32 < bits / 8; counter++) {
    const counterField = Buffer.alloc(4);
    counterField.writeUInt32BE(counter);
    out.push(
      createHmac('sha256', key)
        .update(counterField)
        .update(label(use))
        .update(contextU)
        .update(contextV)
        .update(bitsField)
        .digest(),
    );
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

function label(text: string): Buffer {
  return Buffer.concat([Buffer.from(text, 'ascii'), Buffer.from([0])]);
}

function sized(bytes: Uint8Array): Buffer {
  const size = Buffer.alloc(2);
  size.writeUInt16BE(bytes.length);
  return Buffer.concat([size, bytes]);
}
