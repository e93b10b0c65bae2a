import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

/**
 * Readers for the TPM 2.0 structures key attestation uses (TPM 2.0 Library Part 2), big-endian
 * and size-prefixed as the TPM writes them; laid out as `@simplewebauthn/server` and
 * go-attestation read them. They are TPM marshalling, not ASN.1.
 */

/** `TPM_GENERATED_VALUE`: the TPM made this structure itself. */
export const TPM_GENERATED_VALUE = 0xff544347;
/** `TPM_ST_ATTEST_CERTIFY`. */
export const TPM_ST_ATTEST_CERTIFY = 0x8017;
/** `TPM_ST_ATTEST_CREATION`: TPM2_CertifyCreation's result. */
export const TPM_ST_ATTEST_CREATION = 0x801a;

/** Algorithm ids (TPM_ALG_ID) the attestation uses. */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA256: 0x000b,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAPSS: 0x0016,
  ECDSA: 0x0018,
  ECC: 0x0023,
} as const;

/** `TPM_ECC_NIST_P256`. */
export const TPM_ECC_NIST_P256 = 0x0003;

/** TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
} as const;

/** A TPM structure that cannot be read; `what` names the structure and the fault. */
export class TpmStructureError extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'TpmStructureError';
  }
}

class Reader {
  private offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  private take(length: number): Uint8Array {
    if (this.offset + length > this.bytes.length) throw new TpmStructureError(`${this.what} is truncated`);
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  u8(): number {
    return this.take(1)[0]!;
  }

  u16(): number {
    const b = this.take(2);
    return (b[0]! << 8) | b[1]!;
  }

  u32(): number {
    const b = this.take(4);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }

  u64(): bigint {
    return Buffer.from(this.take(8)).readBigUInt64BE();
  }

  /** A TPM2B: a 16-bit size, then that many bytes. */
  sized(): Uint8Array {
    return this.take(this.u16());
  }

  end(): void {
    if (this.offset !== this.bytes.length) throw new TpmStructureError(`${this.what} has trailing bytes`);
  }
}

/** The structure inside a TPM2B (its 16-bit size first, equal to the length of the rest), or `input` as it is. */
function unsized(input: Uint8Array): Uint8Array {
  const sized =
    input.length > 1 &&
    Buffer.from(input.buffer, input.byteOffset, input.byteLength).readUInt16BE(0) === input.length - 2;
  return sized ? input.subarray(2) : input;
}

/** A TPMT_PUBLIC: a key's public area. */
export interface TpmPublic {
  readonly type: number;
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
  /** ECC: the curve id; RSA: undefined. */
  readonly curve?: number;
  /** ECC: the signing scheme (TPM_ALG_ECDSA or NULL); RSA: RSASSA/RSAPSS/NULL. */
  readonly scheme: number;
  readonly symmetric: number;
  /** ECC point or RSA modulus and exponent. */
  readonly ecc?: { readonly x: Uint8Array; readonly y: Uint8Array };
  readonly rsa?: { readonly modulus: Uint8Array; readonly exponent: number };
  /** The exact bytes of the TPMT_PUBLIC, which the name is computed over. */
  readonly bytes: Uint8Array;
}

/** Reads a TPM2B_PUBLIC (as `tpm2_create -u` writes it) or a bare TPMT_PUBLIC. */
export function parseTpmPublic(input: Uint8Array): TpmPublic {
  const bytes = unsized(input);
  const r = new Reader(bytes, 'TPMT_PUBLIC');
  const type = r.u16();
  const nameAlg = r.u16();
  const objectAttributes = r.u32();
  const authPolicy = r.sized();
  const symmetric = r.u16();
  if (symmetric !== TPM_ALG.NULL) {
    r.u16();
    r.u16();
  }
  const scheme = r.u16();
  if (scheme !== TPM_ALG.NULL) r.u16();
  if (type === TPM_ALG.ECC) {
    const curve = r.u16();
    const kdf = r.u16();
    if (kdf !== TPM_ALG.NULL) r.u16();
    const x = r.sized();
    const y = r.sized();
    r.end();
    return { type, nameAlg, objectAttributes, authPolicy, curve, scheme, symmetric, ecc: { x, y }, bytes };
  }
  if (type === TPM_ALG.RSA) {
    r.u16(); // keyBits
    const exponent = r.u32() || 65537;
    const modulus = r.sized();
    r.end();
    return { type, nameAlg, objectAttributes, authPolicy, scheme, symmetric, rsa: { modulus, exponent }, bytes };
  }
  throw new TpmStructureError(`TPMT_PUBLIC has key type 0x${type.toString(16)}, not RSA or ECC`);
}

/** The TPM name of a public area: nameAlg ‖ H(TPMT_PUBLIC). Only SHA-256 names are accepted. */
export function tpmName(area: TpmPublic): Uint8Array {
  if (area.nameAlg !== TPM_ALG.SHA256) throw new TpmStructureError('the key’s name algorithm is not SHA-256');
  const digest = createHash('sha256').update(area.bytes).digest();
  return Buffer.concat([Buffer.from([0x00, 0x0b]), digest]);
}

/** The public key of an ECC P-256 or RSA public area as a Node key. */
export function publicKeyOf(area: TpmPublic): KeyObject {
  if (area.ecc) {
    if (area.curve !== TPM_ECC_NIST_P256) throw new TpmStructureError('the ECC key is not on P-256');
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(pad(area.ecc.x, 32)).toString('base64url'),
        y: Buffer.from(pad(area.ecc.y, 32)).toString('base64url'),
      },
      format: 'jwk',
    });
  }
  const rsa = area.rsa!;
  const e = Buffer.alloc(4);
  e.writeUInt32BE(rsa.exponent);
  return createPublicKey({
    key: {
      kty: 'RSA',
      n: Buffer.from(rsa.modulus).toString('base64url'),
      // Stryker disable next-line ConditionalExpression,EqualityOperator: Node reads a JWK exponent with leading zero bytes as the same integer; stripping them only keeps the JWK minimal (RFC 7518 §6.3.1.2)
      e: Buffer.from(e.subarray(e.findIndex((b) => b !== 0))).toString('base64url'),
    },
    format: 'jwk',
  });
}

function pad(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length > length) throw new TpmStructureError('an ECC coordinate is too long');
  const out = new Uint8Array(length);
  out.set(bytes, length - bytes.length);
  return out;
}

/**
 * A TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY (`name`, `qualifiedName`) or TPM_ST_ATTEST_CREATION
 * (`name` is the object name, `qualifiedName` holds the creation hash): both are two TPM2Bs.
 */
export interface TpmCertifyInfo {
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Uint8Array;
  readonly extraData: Uint8Array;
  readonly firmwareVersion: bigint;
  /** Name of the certified key. */
  readonly name: Uint8Array;
  readonly qualifiedName: Uint8Array;
}

/** Reads a TPMS_ATTEST (or a TPM2B_ATTEST) as `tpm2_certify -o` writes it. */
export function parseTpmAttest(input: Uint8Array): TpmCertifyInfo {
  const r = new Reader(unsized(input), 'TPMS_ATTEST');
  const magic = r.u32();
  const type = r.u16();
  const qualifiedSigner = r.sized();
  const extraData = r.sized();
  r.u64(); // clock
  r.u32(); // resetCount
  r.u32(); // restartCount
  r.u8(); // safe
  const firmwareVersion = r.u64();
  if (type !== TPM_ST_ATTEST_CERTIFY && type !== TPM_ST_ATTEST_CREATION) {
    return {
      magic,
      type,
      qualifiedSigner,
      extraData,
      firmwareVersion,
      name: new Uint8Array(),
      qualifiedName: new Uint8Array(),
    };
  }
  const name = r.sized();
  const qualifiedName = r.sized();
  r.end();
  return { magic, type, qualifiedSigner, extraData, firmwareVersion, name, qualifiedName };
}

/** A TPMT_SIGNATURE: the algorithm and the signature in the form Node's `verify` takes. */
export interface TpmSignature {
  readonly sigAlg: number;
  readonly hashAlg: number;
  /** ECDSA: r‖s (IEEE P1363, 32 bytes each for P-256); RSA: the signature bytes. */
  readonly signature: Uint8Array;
}

/** Reads a TPMT_SIGNATURE as `tpm2_certify -s` / `tpm2_sign -o` write it by default. */
export function parseTpmSignature(input: Uint8Array): TpmSignature {
  const r = new Reader(input, 'TPMT_SIGNATURE');
  const sigAlg = r.u16();
  const hashAlg = r.u16();
  if (sigAlg === TPM_ALG.ECDSA) {
    const sr = pad(r.sized(), 32);
    const ss = pad(r.sized(), 32);
    r.end();
    return { sigAlg, hashAlg, signature: Buffer.concat([sr, ss]) };
  }
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const signature = r.sized();
    r.end();
    return { sigAlg, hashAlg, signature };
  }
  throw new TpmStructureError(`TPMT_SIGNATURE has algorithm 0x${sigAlg.toString(16)}, not ECDSA or RSA`);
}
