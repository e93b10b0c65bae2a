import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cat, sized, u16, u32, u64 } from '../../testing/tpm-marshal';
import {
  parseTpmAttest,
  parseTpmPublic,
  parseTpmSignature,
  publicKeyOf,
  TPM_ALG,
  TPM_ECC_NIST_P256,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_CERTIFY,
  TPM_ST_ATTEST_CREATION,
  TPMA_OBJECT,
  tpmName,
  TpmStructureError,
} from './tpm-structures';

/**
 * The TPM 2.0 readers on structures marshalled here byte by byte (TPM 2.0 Library Part 2), with keys
 * made by node:crypto: no TPM needed. The swtpm suites (tpm-attestation*.test.ts) read what a real
 * TPM writes.
 */

const ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.sign;
const POLICY = Buffer.alloc(32, 0x5a);

function jwkOf(key: KeyObject) {
  return key.export({ format: 'jwk' });
}

/** A TPMT_PUBLIC of an ECC key: `symmetric` and `scheme` with their detail when not NULL, the KDF likewise. */
function eccPublic(
  key: KeyObject,
  options: { symmetric?: number; scheme?: number; kdf?: number; curve?: number; nameAlg?: number } = {},
) {
  const jwk = jwkOf(key);
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  const symmetric = options.symmetric ?? TPM_ALG.NULL;
  const scheme = options.scheme ?? TPM_ALG.ECDSA;
  const kdf = options.kdf ?? TPM_ALG.NULL;
  return cat(
    u16(TPM_ALG.ECC),
    u16(options.nameAlg ?? TPM_ALG.SHA256),
    u32(ATTRIBUTES),
    sized(POLICY),
    u16(symmetric),
    symmetric === TPM_ALG.NULL ? Buffer.alloc(0) : cat(u16(128), u16(0x0043)),
    u16(scheme),
    scheme === TPM_ALG.NULL ? Buffer.alloc(0) : u16(TPM_ALG.SHA256),
    u16(options.curve ?? TPM_ECC_NIST_P256),
    u16(kdf),
    kdf === TPM_ALG.NULL ? Buffer.alloc(0) : u16(TPM_ALG.SHA256),
    sized(x),
    sized(y),
  );
}

function rsaPublic(key: KeyObject, options: { exponent?: number; scheme?: number; symmetric?: number } = {}) {
  const modulus = Buffer.from(jwkOf(key).n!, 'base64url');
  const symmetric = options.symmetric ?? TPM_ALG.NULL;
  const scheme = options.scheme ?? TPM_ALG.RSASSA;
  return cat(
    u16(TPM_ALG.RSA),
    u16(TPM_ALG.SHA256),
    u32(TPMA_OBJECT.fixedTPM | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt),
    sized(Buffer.alloc(0)),
    u16(symmetric),
    symmetric === TPM_ALG.NULL ? Buffer.alloc(0) : cat(u16(128), u16(0x0043)),
    u16(scheme),
    scheme === TPM_ALG.NULL ? Buffer.alloc(0) : u16(TPM_ALG.SHA256),
    u16(2048),
    u32(options.exponent ?? 0),
    sized(modulus),
  );
}

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

function structureError(run: () => unknown): string {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TpmStructureError);
  expect((thrown as Error).name).toBe('TpmStructureError');
  return (thrown as Error).message;
}

describe('the TPM constants', () => {
  it('are the values of TPM 2.0 Part 2', () => {
    expect(TPM_GENERATED_VALUE).toBe(0xff544347);
    expect(TPM_ST_ATTEST_CERTIFY).toBe(0x8017);
    expect(TPM_ST_ATTEST_CREATION).toBe(0x801a);
    expect(TPM_ECC_NIST_P256).toBe(0x0003);
    expect(TPM_ALG).toEqual({
      RSA: 0x0001,
      SHA256: 0x000b,
      NULL: 0x0010,
      RSASSA: 0x0014,
      RSAPSS: 0x0016,
      ECDSA: 0x0018,
      ECC: 0x0023,
    });
    expect(TPMA_OBJECT).toEqual({
      fixedTPM: 0x2,
      fixedParent: 0x10,
      sensitiveDataOrigin: 0x20,
      userWithAuth: 0x40,
      restricted: 0x10000,
      decrypt: 0x20000,
      sign: 0x40000,
    });
  });
});

describe('parseTpmPublic', () => {
  it('reads an ECC public area, bare or as a TPM2B', () => {
    const bare = eccPublic(ec.publicKey);
    for (const input of [bare, sized(bare)]) {
      const area = parseTpmPublic(input);
      expect(area).toMatchObject({
        type: TPM_ALG.ECC,
        nameAlg: TPM_ALG.SHA256,
        objectAttributes: ATTRIBUTES,
        curve: TPM_ECC_NIST_P256,
        scheme: TPM_ALG.ECDSA,
        symmetric: TPM_ALG.NULL,
      });
      expect(Buffer.from(area.authPolicy).equals(POLICY)).toBe(true);
      expect(Buffer.from(area.bytes).equals(bare)).toBe(true);
      expect(area.rsa).toBeUndefined();
      expect(jwkOf(publicKeyOf(area))).toEqual(jwkOf(ec.publicKey));
    }
  });

  it('reads the symmetric, scheme and KDF details only when they are not NULL', () => {
    const area = parseTpmPublic(eccPublic(ec.publicKey, { symmetric: 0x0006, scheme: TPM_ALG.ECDSA, kdf: 0x0020 }));
    expect(area).toMatchObject({ symmetric: 0x0006, scheme: TPM_ALG.ECDSA, curve: TPM_ECC_NIST_P256 });
    expect(jwkOf(publicKeyOf(area))).toEqual(jwkOf(ec.publicKey));
    const nullScheme = parseTpmPublic(eccPublic(ec.publicKey, { scheme: TPM_ALG.NULL }));
    expect(nullScheme.scheme).toBe(TPM_ALG.NULL);
    expect(jwkOf(publicKeyOf(nullScheme))).toEqual(jwkOf(ec.publicKey));
  });

  it('reads an RSA public area, the exponent 0 as 65537', () => {
    const bare = rsaPublic(rsa.publicKey, { symmetric: 0x0006, scheme: TPM_ALG.NULL });
    const area = parseTpmPublic(sized(bare));
    expect(area).toMatchObject({
      type: TPM_ALG.RSA,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt,
      scheme: TPM_ALG.NULL,
      symmetric: 0x0006,
    });
    expect(area.curve).toBeUndefined();
    expect(area.ecc).toBeUndefined();
    expect(area.authPolicy).toHaveLength(0);
    expect(area.rsa!.exponent).toBe(65537);
    expect(Buffer.from(area.rsa!.modulus).toString('base64url')).toBe(jwkOf(rsa.publicKey).n);
    expect(jwkOf(publicKeyOf(area))).toEqual(jwkOf(rsa.publicKey));
    expect(Buffer.from(area.bytes).equals(bare)).toBe(true);
  });

  it('keeps an RSA exponent other than 0, including one with the top bit set', () => {
    const three = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 });
    const area = parseTpmPublic(rsaPublic(three.publicKey, { exponent: 3, scheme: TPM_ALG.RSAPSS }));
    expect(area.rsa!.exponent).toBe(3);
    expect(area.scheme).toBe(TPM_ALG.RSAPSS);
    expect(jwkOf(publicKeyOf(area)).e).toBe('Aw');
    expect(parseTpmPublic(rsaPublic(rsa.publicKey, { exponent: 0x80000001 })).rsa!.exponent).toBe(0x80000001);
    expect(parseTpmPublic(rsaPublic(rsa.publicKey, { exponent: 0x00010001 })).rsa!.exponent).toBe(65537);
  });

  it('refuses another key type, naming it in hex', () => {
    const keyedHash = cat(u16(0x0025), eccPublic(ec.publicKey).subarray(2));
    expect(structureError(() => parseTpmPublic(keyedHash))).toBe('TPMT_PUBLIC has key type 0x25, not RSA or ECC');
  });

  it('refuses a truncated area and trailing bytes', () => {
    const bare = eccPublic(ec.publicKey);
    expect(structureError(() => parseTpmPublic(bare.subarray(0, bare.length - 1)))).toBe('TPMT_PUBLIC is truncated');
    expect(structureError(() => parseTpmPublic(cat(bare, Buffer.from([0]))))).toBe('TPMT_PUBLIC has trailing bytes');
    const rsaBare = rsaPublic(rsa.publicKey);
    expect(structureError(() => parseTpmPublic(rsaBare.subarray(0, rsaBare.length - 1)))).toBe(
      'TPMT_PUBLIC is truncated',
    );
    expect(structureError(() => parseTpmPublic(cat(rsaBare, Buffer.from([0]))))).toBe('TPMT_PUBLIC has trailing bytes');
  });

  it('refuses inputs too short to hold anything with its own error', () => {
    expect(structureError(() => parseTpmPublic(new Uint8Array()))).toBe('TPMT_PUBLIC is truncated');
    expect(structureError(() => parseTpmPublic(new Uint8Array([0x00])))).toBe('TPMT_PUBLIC is truncated');
    expect(structureError(() => parseTpmPublic(new Uint8Array([0x00, 0x00])))).toBe('TPMT_PUBLIC is truncated');
  });

  it('reads a TPM2B inside a larger buffer at its own offset', () => {
    const bare = eccPublic(ec.publicKey);
    const outer = cat(Buffer.from([0xee, 0xee, 0xee]), sized(bare));
    const view = new Uint8Array(outer.buffer, outer.byteOffset + 3, bare.length + 2);
    expect(jwkOf(publicKeyOf(parseTpmPublic(view)))).toEqual(jwkOf(ec.publicKey));
  });
});

describe('tpmName', () => {
  it('is the SHA-256 name algorithm id then the SHA-256 of the TPMT_PUBLIC', () => {
    const bare = eccPublic(ec.publicKey);
    const expected = cat(Buffer.from([0x00, 0x0b]), createHash('sha256').update(bare).digest());
    expect(Buffer.from(tpmName(parseTpmPublic(sized(bare)))).equals(expected)).toBe(true);
  });

  it('refuses a key named with another algorithm', () => {
    const area = parseTpmPublic(eccPublic(ec.publicKey, { nameAlg: 0x0004 }));
    expect(structureError(() => tpmName(area))).toBe('the key’s name algorithm is not SHA-256');
  });
});

describe('publicKeyOf', () => {
  it.each(['x', 'y'] as const)('pads an ECC %s the TPM wrote without its leading zero byte', (coordinate) => {
    // A key whose coordinate starts with a zero byte (one in 256): the TPM writes it one byte shorter.
    let key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    while (Buffer.from(jwkOf(key)[coordinate]!, 'base64url')[0] !== 0) {
      key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    }
    const full = parseTpmPublic(eccPublic(key));
    const short = { ...full, ecc: { ...full.ecc!, [coordinate]: full.ecc![coordinate].subarray(1) } };
    expect(short.ecc[coordinate]).toHaveLength(31);
    expect(jwkOf(publicKeyOf(short))).toEqual(jwkOf(key));
  });

  it('refuses a curve other than P-256 and a coordinate over 32 bytes', () => {
    const p384 = parseTpmPublic(eccPublic(ec.publicKey, { curve: 0x0004 }));
    expect(p384.curve).toBe(0x0004);
    expect(structureError(() => publicKeyOf(p384))).toBe('the ECC key is not on P-256');
    const area = parseTpmPublic(eccPublic(ec.publicKey));
    const long = { ...area, ecc: { x: cat(Buffer.alloc(1), area.ecc!.x), y: area.ecc!.y } };
    expect(structureError(() => publicKeyOf(long))).toBe('an ECC coordinate is too long');
  });
});

/** A TPMS_ATTEST as TPM2_Certify writes it. */
function attest(options: { type?: number; name?: Uint8Array; qualifiedName?: Uint8Array; magic?: number } = {}) {
  const type = options.type ?? TPM_ST_ATTEST_CERTIFY;
  return cat(
    u32(options.magic ?? TPM_GENERATED_VALUE),
    u16(type),
    sized(Buffer.from('signer-name')),
    sized(Buffer.from('nonce-0123456789')),
    u64(0x0102030405060708n), // clock
    u32(7), // resetCount
    u32(8), // restartCount
    Buffer.from([1]), // safe
    u64(0xfedcba9876543210n), // firmwareVersion
    type === TPM_ST_ATTEST_CERTIFY || type === TPM_ST_ATTEST_CREATION
      ? cat(sized(options.name ?? Buffer.from('key-name')), sized(options.qualifiedName ?? Buffer.from('qualified')))
      : Buffer.from('other attestation'),
  );
}

describe('parseTpmAttest', () => {
  it('reads a TPM2_Certify result, bare or as a TPM2B', () => {
    for (const input of [attest(), sized(attest())]) {
      const info = parseTpmAttest(input);
      expect(info.magic).toBe(TPM_GENERATED_VALUE);
      expect(info.type).toBe(TPM_ST_ATTEST_CERTIFY);
      expect(Buffer.from(info.qualifiedSigner).toString()).toBe('signer-name');
      expect(Buffer.from(info.extraData).toString()).toBe('nonce-0123456789');
      expect(info.firmwareVersion).toBe(0xfedcba9876543210n);
      expect(Buffer.from(info.name).toString()).toBe('key-name');
      expect(Buffer.from(info.qualifiedName).toString()).toBe('qualified');
    }
  });

  it('reads a TPM2_CertifyCreation result the same way', () => {
    const info = parseTpmAttest(attest({ type: TPM_ST_ATTEST_CREATION, qualifiedName: Buffer.from('creation-hash') }));
    expect(info.type).toBe(TPM_ST_ATTEST_CREATION);
    expect(Buffer.from(info.qualifiedName).toString()).toBe('creation-hash');
  });

  it('reads another attestation type without its body, leaving the names empty', () => {
    const info = parseTpmAttest(attest({ type: 0x8018, magic: 0x12345678 }));
    expect(info).toMatchObject({ magic: 0x12345678, type: 0x8018, firmwareVersion: 0xfedcba9876543210n });
    expect(info.name).toHaveLength(0);
    expect(info.qualifiedName).toHaveLength(0);
    expect(Buffer.from(info.extraData).toString()).toBe('nonce-0123456789');
  });

  it('refuses a truncated certification and trailing bytes', () => {
    const full = attest();
    expect(structureError(() => parseTpmAttest(full.subarray(0, full.length - 1)))).toBe('TPMS_ATTEST is truncated');
    expect(structureError(() => parseTpmAttest(cat(full, Buffer.from([0]))))).toBe('TPMS_ATTEST has trailing bytes');
    expect(structureError(() => parseTpmAttest(full.subarray(0, 40)))).toBe('TPMS_ATTEST is truncated');
  });
});

describe('parseTpmSignature', () => {
  const data = Buffer.from('to be signed');

  it('reads an ECDSA signature as r‖s that verifies, padding short integers to 32 bytes', () => {
    let signature = sign('sha256', data, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    // A signature whose r starts with a zero byte, written by the TPM without it, must read back the same.
    while (signature[0] !== 0) signature = sign('sha256', data, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    const r = signature.subarray(1, 32);
    const s = signature.subarray(32);
    const parsed = parseTpmSignature(cat(u16(TPM_ALG.ECDSA), u16(TPM_ALG.SHA256), sized(r), sized(s)));
    expect(parsed.sigAlg).toBe(TPM_ALG.ECDSA);
    expect(parsed.hashAlg).toBe(TPM_ALG.SHA256);
    expect(Buffer.from(parsed.signature).equals(signature)).toBe(true);
    expect(verify('sha256', data, { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, parsed.signature)).toBe(true);
  });

  it.each([
    ['RSASSA', TPM_ALG.RSASSA],
    ['RSAPSS', TPM_ALG.RSAPSS],
  ])('reads an %s signature as it is', (_name, alg) => {
    const signature = sign('sha256', data, rsa.privateKey);
    const parsed = parseTpmSignature(cat(u16(alg), u16(TPM_ALG.SHA256), sized(signature)));
    expect(parsed).toMatchObject({ sigAlg: alg, hashAlg: TPM_ALG.SHA256 });
    expect(Buffer.from(parsed.signature).equals(signature)).toBe(true);
  });

  it('refuses another algorithm, trailing bytes, a truncated signature and an oversized integer', () => {
    expect(
      structureError(() => parseTpmSignature(cat(u16(0x0005), u16(TPM_ALG.SHA256), sized(Buffer.alloc(32))))),
    ).toBe('TPMT_SIGNATURE has algorithm 0x5, not ECDSA or RSA');
    const ecdsa = cat(u16(TPM_ALG.ECDSA), u16(TPM_ALG.SHA256), sized(Buffer.alloc(32, 1)), sized(Buffer.alloc(32, 2)));
    expect(structureError(() => parseTpmSignature(cat(ecdsa, Buffer.from([0]))))).toBe(
      'TPMT_SIGNATURE has trailing bytes',
    );
    expect(structureError(() => parseTpmSignature(ecdsa.subarray(0, ecdsa.length - 1)))).toBe(
      'TPMT_SIGNATURE is truncated',
    );
    const rsassa = cat(u16(TPM_ALG.RSASSA), u16(TPM_ALG.SHA256), sized(Buffer.alloc(256, 1)));
    expect(structureError(() => parseTpmSignature(cat(rsassa, Buffer.from([0]))))).toBe(
      'TPMT_SIGNATURE has trailing bytes',
    );
    expect(
      structureError(() =>
        parseTpmSignature(
          cat(u16(TPM_ALG.ECDSA), u16(TPM_ALG.SHA256), sized(Buffer.alloc(33, 1)), sized(Buffer.alloc(32))),
        ),
      ),
    ).toBe('an ECC coordinate is too long');
  });

  it('does not take a TPM2B size prefix for part of the signature', () => {
    const ecdsa = cat(u16(TPM_ALG.ECDSA), u16(TPM_ALG.SHA256), sized(Buffer.alloc(32, 1)), sized(Buffer.alloc(32, 2)));
    expect(structureError(() => parseTpmSignature(sized(ecdsa)))).toBe(
      `TPMT_SIGNATURE has algorithm 0x${ecdsa.length.toString(16)}, not ECDSA or RSA`,
    );
  });
});
