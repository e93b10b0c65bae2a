import { constants, createDecipheriv, createHmac, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { kdfa, makeCredential } from './credential';

/**
 * TPM2_MakeCredential without a TPM. KDFa is pinned by known answers from OpenSSL's SP 800-108 KBKDF
 * (counter mode, HMAC-SHA256, the label's zero byte as separator: `openssl kdf -kdfopt mac:HMAC
 * -kdfopt digest:SHA256 -kdfopt hexkey:… -kdfopt salt:<label> -kdfopt hexinfo:<contextU‖contextV> KBKDF`);
 * the credential is then opened here the way TPM2_ActivateCredential does (Part 1 §24), with the EK's
 * private key. The swtpm suites (tpm-attestation*.test.ts) prove that a real TPM opens it too.
 */
const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

describe('kdfa', () => {
  it('matches SP 800-108 KBKDF for one block, shorter than a block', () => {
    expect(kdfa(KEY, 'STORAGE', Buffer.from('000b', 'hex'), Buffer.from('0102', 'hex'), 128).toString('hex')).toBe(
      'a889755b2f86d140a821afc0272ab93b',
    );
    expect(kdfa(KEY, 'INTEGRITY', new Uint8Array(), new Uint8Array(), 256).toString('hex')).toBe(
      'bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe2692e',
    );
  });

  it('matches it over two blocks (counters 1 and 2), contextU and contextV concatenated', () => {
    const expected =
      'd27692dcd7ab1e7eb5d47758f42bda353a63bf1db510a00ce1e450708533b9c0' +
      '583b98a9fbefb2e717d3ea335645fdec5743dc3e340c4f3369164a6bd97905f3';
    expect(kdfa(KEY, 'STORAGE', Buffer.from('000b', 'hex'), Buffer.from('0102', 'hex'), 512).toString('hex')).toBe(
      expected,
    );
    expect(kdfa(KEY, 'STORAGE', Buffer.from('000b0102', 'hex'), new Uint8Array(), 512).toString('hex')).toBe(expected);
  });
});

/** TPM2_ActivateCredential's checks and decryption, with the EK private key. */
function activate(
  ek: ReturnType<typeof generateKeyPairSync>['privateKey'],
  akName: Uint8Array,
  blob: Buffer,
  encryptedSecret: Buffer,
): Buffer {
  expect(encryptedSecret.readUInt16BE(0)).toBe(encryptedSecret.length - 2);
  const seed = privateDecrypt(
    {
      key: ek,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      oaepLabel: Buffer.from('IDENTITY\0', 'ascii'),
    },
    encryptedSecret.subarray(2),
  );
  expect(seed).toHaveLength(32);
  expect(blob.readUInt16BE(0)).toBe(blob.length - 2);
  expect(blob.readUInt16BE(2)).toBe(32);
  const integrity = blob.subarray(4, 36);
  const encIdentity = blob.subarray(36);
  const hmacKey = kdfa(seed, 'INTEGRITY', new Uint8Array(), new Uint8Array(), 256);
  expect(createHmac('sha256', hmacKey).update(encIdentity).update(akName).digest().equals(integrity)).toBe(true);
  const symKey = kdfa(seed, 'STORAGE', akName, new Uint8Array(), 128);
  const decipher = createDecipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const identity = Buffer.concat([decipher.update(encIdentity), decipher.final()]);
  expect(identity.readUInt16BE(0)).toBe(identity.length - 2);
  return identity.subarray(2);
}

describe('makeCredential', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const akName = Buffer.concat([Buffer.from([0x00, 0x0b]), randomBytes(32)]);

  it.each([16, 32, 0])('wraps a %i-byte secret only the EK can recover, bound to the AK name', (length) => {
    const secret = randomBytes(length);
    const { credentialBlob, encryptedSecret } = makeCredential(publicKey, akName, secret);
    expect(encryptedSecret).toHaveLength(2 + 256);
    expect(credentialBlob).toHaveLength(2 + 2 + 32 + 2 + length);
    expect(activate(privateKey, akName, credentialBlob, encryptedSecret).equals(secret)).toBe(true);
  });

  it('uses a fresh seed each time', () => {
    const secret = randomBytes(32);
    const one = makeCredential(publicKey, akName, secret);
    const two = makeCredential(publicKey, akName, secret);
    expect(one.encryptedSecret.equals(two.encryptedSecret)).toBe(false);
    expect(one.credentialBlob.equals(two.credentialBlob)).toBe(false);
  });

  it('fails the integrity check for another AK name', () => {
    const { credentialBlob, encryptedSecret } = makeCredential(publicKey, akName, randomBytes(32));
    const otherName = Buffer.from(akName);
    otherName[5]! ^= 1;
    expect(() => activate(privateKey, otherName, credentialBlob, encryptedSecret)).toThrow();
  });

  it('refuses a secret over 32 bytes and an endorsement key that is not RSA', () => {
    expect(() => makeCredential(publicKey, akName, randomBytes(33))).toThrow(
      new Error('The credential is at most 32 bytes'),
    );
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => makeCredential(ec, akName, randomBytes(32))).toThrow(
      new Error('Only an RSA endorsement key is supported'),
    );
  });
});
