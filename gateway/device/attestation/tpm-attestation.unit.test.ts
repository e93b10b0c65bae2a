import {
  constants,
  createDecipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
  sign,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { QuotaExceeded } from '../../limits/quotas';
import { cat, sized, u16, u32 } from '../../testing/tpm-marshal';
import { TrustBundle, x509 } from './certificate-chain';
import { kdfa } from './credential';
import {
  InMemoryPendingActivations,
  type HoldResult,
  type PendingActivation,
  type PendingActivationLimits,
  type PendingActivationStore,
} from './pending-activations';
import { AttestationError } from './refusal';
import {
  AttestationStartBody,
  TpmAttestationEvidence,
  TpmAttestationVerifier,
  type VerifiedTpmKey,
} from './tpm-attestation';
import {
  TPM_ALG,
  TPM_ECC_NIST_P256,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_CERTIFY,
  TPM_ST_ATTEST_CREATION,
  TPMA_OBJECT,
} from './tpm-structures';

/**
 * The TPM attestation verifier without a TPM: the endorsement key certificate is issued here by a
 * manufacturer root made with @peculiar/x509, the attestation key (AK) and the device key are
 * node:crypto keys, their TPMT_PUBLIC areas, the TPMS_ATTEST of TPM2_Certify and its TPMT_SIGNATURE
 * are marshalled byte by byte (TPM 2.0 Library Part 2), and the credential is activated here with the
 * EK's private key as TPM2_ActivateCredential does (Part 1 §24). Every refusal is checked by its
 * step and exact detail, and by what it left behind: no activation held, or the activation used up.
 * The swtpm suites (tpm-attestation*.test.ts) run the same checks against a real (software) TPM.
 */

// --- TPM marshalling ---------------------------------------------------------------------------

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

const REQUIRED = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin;
const AK_ATTRIBUTES = REQUIRED | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;
const DEVICE_ATTRIBUTES = REQUIRED | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign;

interface AreaOptions {
  readonly attributes?: number;
  readonly curve?: number;
  readonly nameAlg?: number;
}

/** A TPMT_PUBLIC of a P-256 (or `curve`) key, ECDSA-SHA256 scheme, as tpm2_create writes it. */
function eccArea(key: KeyObject, options: AreaOptions = {}): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return cat(
    u16(TPM_ALG.ECC),
    u16(options.nameAlg ?? TPM_ALG.SHA256),
    u32(options.attributes ?? DEVICE_ATTRIBUTES),
    sized(Buffer.alloc(0)),
    u16(TPM_ALG.NULL),
    u16(TPM_ALG.ECDSA),
    u16(TPM_ALG.SHA256),
    u16(options.curve ?? TPM_ECC_NIST_P256),
    u16(TPM_ALG.NULL),
    sized(Buffer.from(jwk.x!, 'base64url')),
    sized(Buffer.from(jwk.y!, 'base64url')),
  );
}

/** A TPMT_PUBLIC of an RSA key, RSASSA-SHA256 scheme. */
function rsaArea(key: KeyObject, options: AreaOptions = {}): Buffer {
  return cat(
    u16(TPM_ALG.RSA),
    u16(options.nameAlg ?? TPM_ALG.SHA256),
    u32(options.attributes ?? AK_ATTRIBUTES),
    sized(Buffer.alloc(0)),
    u16(TPM_ALG.NULL),
    u16(TPM_ALG.RSASSA),
    u16(TPM_ALG.SHA256),
    u16(Buffer.from(key.export({ format: 'jwk' }).n!, 'base64url').length * 8),
    u32(0),
    sized(Buffer.from(key.export({ format: 'jwk' }).n!, 'base64url')),
  );
}

/** nameAlg ‖ SHA-256(TPMT_PUBLIC). */
const nameOf = (area: Uint8Array) => cat(u16(TPM_ALG.SHA256), createHash('sha256').update(area).digest());

interface AttestOptions {
  readonly magic?: number;
  readonly type?: number;
  readonly extraData: Uint8Array;
  readonly name: Uint8Array;
}

/** A TPMS_ATTEST as TPM2_Certify returns it. */
function attest(options: AttestOptions): Buffer {
  return cat(
    u32(options.magic ?? TPM_GENERATED_VALUE),
    u16(options.type ?? TPM_ST_ATTEST_CERTIFY),
    sized(nameOf(Buffer.from('the AK'))),
    sized(options.extraData),
    Buffer.alloc(8, 1), // clock
    u32(2), // resetCount
    u32(3), // restartCount
    Buffer.from([1]), // safe
    Buffer.alloc(8, 4), // firmwareVersion
    sized(options.name),
    sized(cat(u16(TPM_ALG.SHA256), Buffer.alloc(32, 9))),
  );
}

/** A TPMT_SIGNATURE over `bytes` by `key` (ECDSA r, s or RSASSA), with `hashAlg` as the TPM names it. */
function tpmSignature(key: KeyObject, bytes: Uint8Array, hashAlg: number = TPM_ALG.SHA256): Buffer {
  if (key.asymmetricKeyType === 'ec') {
    const rs = sign('sha256', bytes, { key, dsaEncoding: 'ieee-p1363' });
    return cat(u16(TPM_ALG.ECDSA), u16(hashAlg), sized(rs.subarray(0, 32)), sized(rs.subarray(32)));
  }
  return cat(u16(TPM_ALG.RSASSA), u16(hashAlg), sized(sign('sha256', bytes, key)));
}

/** TPM2_ActivateCredential with the EK's private key: the secret, for this AK name only. */
function activate(ek: KeyObject, akName: Uint8Array, blob: Buffer, encryptedSecret: Buffer): Buffer {
  const seed = privateDecrypt(
    {
      key: ek,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      oaepLabel: Buffer.from('IDENTITY\0', 'ascii'),
    },
    encryptedSecret.subarray(2),
  );
  const integrity = blob.subarray(4, 36);
  const encIdentity = blob.subarray(36);
  const hmacKey = kdfa(seed, 'INTEGRITY', new Uint8Array(), new Uint8Array(), 256);
  if (!createHmac('sha256', hmacKey).update(encIdentity).update(akName).digest().equals(integrity)) {
    throw new Error('the credential is not for this AK name');
  }
  const decipher = createDecipheriv(
    'aes-128-cfb',
    kdfa(seed, 'STORAGE', akName, new Uint8Array(), 128),
    Buffer.alloc(16),
  );
  const identity = Buffer.concat([decipher.update(encIdentity), decipher.final()]);
  return identity.subarray(2);
}

// --- The manufacturer, its TPM and the keys ----------------------------------------------------

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

interface Issued {
  readonly certificate: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

async function rootCa(name: string): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true)],
  });
  return { certificate, keys };
}

/** An EK certificate for `spki` (DER) issued by `issuer`; base64 (standard alphabet) DER. */
async function ekCertificate(issuer: Issued, spki: Uint8Array, name = 'EK'): Promise<string> {
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: `CN=${name}`,
    issuer: issuer.certificate.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    signingAlgorithm: ALGORITHM,
    publicKey: new Uint8Array(spki),
    signingKey: issuer.keys.privateKey,
  });
  return Buffer.from(certificate.rawData).toString('base64');
}

const spkiOf = (key: KeyObject) => key.export({ format: 'der', type: 'spki' });

let manufacturer: Issued;
let roots: TrustBundle;
/**
 * RSA keys of 1024 bits: no check here depends on the size, and making 2048-bit keys costs seconds per
 * run on a loaded machine (the mutation run loads this file once per mutant).
 */
const RSA = { modulusLength: 1024 } as const;
const ek = generateKeyPairSync('rsa', RSA);
let ekCert: string;
let ekDer: Buffer;
const ak = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const akRsa = generateKeyPairSync('rsa', RSA);
const deviceKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const deviceJwk = (() => {
  const { crv, x, y } = deviceKey.publicKey.export({ format: 'jwk' });
  return { crv, x, y };
})();

beforeAll(async () => {
  manufacturer = await rootCa('TPM Manufacturer Root');
  roots = TrustBundle.fromPem(manufacturer.certificate.toString('pem'), 'TPM manufacturer roots');
  ekCert = await ekCertificate(manufacturer, spkiOf(ek.publicKey));
  ekDer = Buffer.from(ekCert, 'base64');
});

afterEach(() => {
  vi.useRealTimers();
});

// --- The verifier and a recording store --------------------------------------------------------

const T0 = 1_900_000_000;
const USER = 'user-1';

/** The in-memory store, recording what the verifier asked it to hold. */
class RecordingStore extends InMemoryPendingActivations {
  readonly holds: { nonce: string; activation: PendingActivation; limits: PendingActivationLimits }[] = [];

  override async hold(
    nonce: string,
    activation: PendingActivation,
    limits: PendingActivationLimits,
  ): Promise<HoldResult> {
    this.holds.push({ nonce, activation, limits });
    return super.hold(nonce, activation, limits);
  }
}

/** A store that holds nothing and hands out `activation` for any request (a shared store gone wrong). */
class FixedStore implements PendingActivationStore {
  constructor(private readonly activation: PendingActivation | undefined) {}
  async hold(): Promise<HoldResult> {
    return { held: true };
  }
  async take(): Promise<PendingActivation | undefined> {
    return this.activation;
  }
}

interface Setup {
  readonly verifier: TpmAttestationVerifier;
  readonly store: RecordingStore;
  /** Seconds, as the verifier reads them. */
  now: number;
}

function setup(options: { lifetime?: number; perUser?: number; maxPending?: number } = {}): Setup {
  const store = new RecordingStore(options.maxPending);
  const clock = { now: T0 };
  const verifier = new TpmAttestationVerifier(
    roots,
    store,
    options.lifetime ?? 120,
    () => clock.now,
    options.perUser ?? 10,
  );
  return Object.assign(clock, { store, verifier });
}

/** A challenge nonce (base64url, as the gateway issues them) that starts with "-_-_", the characters base64url does not share with base64. */
const newNonce = () => b64url(cat(Buffer.from([0xfb, 0xff, 0xbf]), randomBytes(30)));

interface Started {
  readonly nonce: string;
  readonly secret: Buffer;
  readonly akPublic: Buffer;
  readonly akPrivate: KeyObject;
}

/** Step 2 and the client's activation: the AK (ECC by default) sent, the credential opened with the EK. */
async function begin(
  verifier: TpmAttestationVerifier,
  options: { userId?: string; nonce?: string; akPublic?: Buffer; akPrivate?: KeyObject } = {},
): Promise<Started> {
  const nonce = options.nonce ?? newNonce();
  const akPublic = options.akPublic ?? eccArea(ak.publicKey, { attributes: AK_ATTRIBUTES });
  const credential = await verifier.begin(options.userId ?? USER, {
    nonce,
    ek_certificate: ekCert,
    ak_public: b64url(sized(akPublic)),
  });
  const secret = activate(ek.privateKey, nameOf(akPublic), credential.credentialBlob, credential.encryptedSecret);
  return { nonce, secret, akPublic, akPrivate: options.akPrivate ?? ak.privateKey };
}

interface EvidenceOptions {
  readonly secret?: Uint8Array;
  readonly devicePublic?: Buffer;
  /** The certified name; the device public area's by default. */
  readonly name?: Uint8Array;
  readonly extraData?: Uint8Array;
  readonly magic?: number;
  readonly type?: number;
  /** The TPMS_ATTEST as it is instead of its TPM2B. */
  readonly bare?: boolean;
  readonly signer?: KeyObject;
  readonly hashAlg?: number;
  /** Signs these bytes instead of the TPMS_ATTEST. */
  readonly signed?: Uint8Array;
  readonly signature?: Buffer;
}

/** Step 4's evidence for `started`: the device key certified by the AK over the nonce. */
function evidence(started: Started, options: EvidenceOptions = {}): TpmAttestationEvidence {
  const devicePublic = options.devicePublic ?? eccArea(deviceKey.publicKey);
  const info = attest({
    magic: options.magic,
    type: options.type,
    extraData: options.extraData ?? Buffer.from(started.nonce, 'base64url'),
    name: options.name ?? nameOf(devicePublic),
  });
  const signature =
    options.signature ?? tpmSignature(options.signer ?? started.akPrivate, options.signed ?? info, options.hashAlg);
  return {
    format: 'tpm2',
    secret: b64url(options.secret ?? started.secret),
    device_public: b64url(sized(devicePublic)),
    certify_info: b64url(options.bare ? info : sized(info)),
    certify_signature: b64url(signature),
  };
}

async function refusalOf(promise: Promise<unknown>): Promise<{ step: string; detail: string }> {
  const error = await promise.then(
    (accepted) => accepted,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(AttestationError);
  const { step, detail } = error as AttestationError;
  return { step, detail };
}

const NO_CREDENTIAL = {
  step: 'credential-activation',
  detail: 'no credential was issued for this challenge (call /v1/device/attestation first, within two minutes)',
};

/** The refusal of complete(), and proof that the activation was used up by it. */
async function completeRefusal(
  s: Setup,
  started: Started,
  ev: TpmAttestationEvidence,
  jwk: { readonly x?: string; readonly y?: string; readonly crv?: string } = deviceJwk,
) {
  const refused = await refusalOf(s.verifier.complete(USER, started.nonce, ev, jwk));
  expect(await refusalOf(s.verifier.complete(USER, started.nonce, evidence(started), deviceJwk))).toEqual(
    NO_CREDENTIAL,
  );
  return refused;
}

const EK_IDENTITY = (): VerifiedTpmKey => ({
  ekFingerprint: createHash('sha256').update(ekDer).digest('hex'),
  ekSubject: 'CN=EK',
  ekIssuer: 'CN=TPM Manufacturer Root',
});

// --- The request bodies ------------------------------------------------------------------------

describe('the request bodies', () => {
  const start = { nonce: 'n'.repeat(16), ek_certificate: 'AAAA', ak_public: 'AAAA' };
  const attestation = {
    format: 'tpm2',
    secret: 'AA',
    device_public: 'AA==',
    certify_info: 'a-_b09Zz',
    certify_signature: 'A+/a',
  };

  it('take a nonce of 16 to 200 characters and base64 or base64url of 1 to 8192 characters', () => {
    expect(AttestationStartBody.parse(start)).toEqual(start);
    expect(AttestationStartBody.safeParse({ ...start, nonce: 'n'.repeat(200) }).success).toBe(true);
    expect(AttestationStartBody.safeParse({ ...start, ak_public: 'A'.repeat(8192) }).success).toBe(true);
    expect(TpmAttestationEvidence.parse(attestation)).toEqual(attestation);
  });

  it('refuse a nonce out of bounds', () => {
    expect(AttestationStartBody.safeParse({ ...start, nonce: 'n'.repeat(15) }).success).toBe(false);
    expect(AttestationStartBody.safeParse({ ...start, nonce: 'n'.repeat(201) }).success).toBe(false);
    expect(AttestationStartBody.safeParse({ ...start, nonce: undefined }).success).toBe(false);
  });

  it('refuse a field that is empty, too long or not base64', () => {
    for (const value of ['', 'A'.repeat(8193), '!AAA', 'AAA!', 'AA=A', 'AA===', 'A A', '=']) {
      expect(AttestationStartBody.safeParse({ ...start, ek_certificate: value }).success, value).toBe(false);
      expect(AttestationStartBody.safeParse({ ...start, ak_public: value }).success, value).toBe(false);
      for (const field of ['secret', 'device_public', 'certify_info', 'certify_signature']) {
        expect(TpmAttestationEvidence.safeParse({ ...attestation, [field]: value }).success, value).toBe(false);
      }
    }
  });

  it('refuse another format than tpm2, and missing fields', () => {
    expect(TpmAttestationEvidence.safeParse({ ...attestation, format: 'tpm' }).success).toBe(false);
    expect(TpmAttestationEvidence.safeParse({ ...attestation, format: undefined }).success).toBe(false);
    expect(AttestationStartBody.safeParse({ nonce: start.nonce, ak_public: 'AAAA' }).success).toBe(false);
    expect(AttestationStartBody.safeParse({ nonce: start.nonce, ek_certificate: 'AAAA' }).success).toBe(false);
    const { certify_signature: _, ...unsigned } = attestation;
    expect(TpmAttestationEvidence.safeParse(unsigned).success).toBe(false);
  });
});

// --- The whole attestation ---------------------------------------------------------------------

describe('a TPM attestation that holds', () => {
  it('is accepted with an ECC AK: the EK identity returned, the activation held as issued and then used up', async () => {
    const s = setup({ lifetime: 90, perUser: 7 });
    const started = await begin(s.verifier);
    expect(s.store.holds).toEqual([
      {
        nonce: started.nonce,
        activation: {
          userId: USER,
          secret: started.secret.toString('base64url'),
          attestationKeyPublic: b64url(sized(started.akPublic)),
          ...EK_IDENTITY(),
          expiresAt: T0 + 90,
        },
        limits: { perUser: 7, now: T0 },
      },
    ]);
    expect(started.secret).toHaveLength(32);
    expect(await s.verifier.complete(USER, started.nonce, evidence(started), deviceJwk)).toEqual(EK_IDENTITY());
    // Taken once: the same evidence again is refused.
    expect(await refusalOf(s.verifier.complete(USER, started.nonce, evidence(started), deviceJwk))).toEqual(
      NO_CREDENTIAL,
    );
  });

  it('is accepted with an RSA AK (RSASSA), a bare TPMS_ATTEST and a TPM2_CertifyCreation result', async () => {
    const s = setup();
    const rsaStarted = await begin(s.verifier, { akPublic: rsaArea(akRsa.publicKey), akPrivate: akRsa.privateKey });
    expect(await s.verifier.complete(USER, rsaStarted.nonce, evidence(rsaStarted), deviceJwk)).toEqual(EK_IDENTITY());
    const bare = await begin(s.verifier);
    expect(await s.verifier.complete(USER, bare.nonce, evidence(bare, { bare: true }), deviceJwk)).toEqual(
      EK_IDENTITY(),
    );
    const creation = await begin(s.verifier);
    const ev = evidence(creation, { type: TPM_ST_ATTEST_CREATION });
    expect(await s.verifier.complete(USER, creation.nonce, ev, deviceJwk)).toEqual(EK_IDENTITY());
  });

  it('is accepted with every field in the standard base64 alphabet, padding included', async () => {
    const s = setup();
    const started = await begin(s.verifier);
    const url = evidence(started);
    const standard = Object.fromEntries(
      Object.entries(url).map(([field, value]) =>
        field === 'format' ? [field, value] : [field, Buffer.from(value, 'base64url').toString('base64')],
      ),
    ) as TpmAttestationEvidence;
    expect(await s.verifier.complete(USER, started.nonce, standard, deviceJwk)).toEqual(EK_IDENTITY());
  });

  it('is accepted up to the activation’s lifetime, and refused one second after it', async () => {
    const s = setup({ lifetime: 60 });
    const inTime = await begin(s.verifier);
    const late = await begin(s.verifier);
    s.now = T0 + 60;
    expect(await s.verifier.complete(USER, inTime.nonce, evidence(inTime), deviceJwk)).toEqual(EK_IDENTITY());
    s.now = T0 + 61;
    expect(await refusalOf(s.verifier.complete(USER, late.nonce, evidence(late), deviceJwk))).toEqual(NO_CREDENTIAL);
  });
});

describe('the defaults', () => {
  it('an in-memory store, two minutes on the clock in seconds, ten activations per person', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Math.floor(Date.now() / 1000) * 1000;
    vi.setSystemTime(start);
    const verifier = new TpmAttestationVerifier(roots);
    const first = await begin(verifier);
    const second = await begin(verifier);
    for (let i = 2; i < 10; i++) await begin(verifier);
    const eleventh = await begin(verifier).catch((error: unknown) => error);
    expect(eleventh).toBeInstanceOf(QuotaExceeded);
    vi.setSystemTime(start + 120_000);
    expect(await verifier.complete(USER, first.nonce, evidence(first), deviceJwk)).toEqual(EK_IDENTITY());
    vi.setSystemTime(start + 121_000);
    expect(await refusalOf(verifier.complete(USER, second.nonce, evidence(second), deviceJwk))).toEqual(NO_CREDENTIAL);
  });
});

// --- begin ---------------------------------------------------------------------------------------

describe('begin refuses, holding nothing', () => {
  async function beginRefusal(s: Setup, body: Partial<AttestationStartBody>) {
    const refused = await refusalOf(
      s.verifier.begin(USER, {
        nonce: newNonce(),
        ek_certificate: ekCert,
        ak_public: b64url(eccArea(ak.publicKey, { attributes: AK_ATTRIBUTES })),
        ...body,
      }),
    );
    expect(s.store.holds).toEqual([]);
    return refused;
  }

  it('an EK certificate that is not DER', async () => {
    expect(await beginRefusal(setup(), { ek_certificate: b64url(Buffer.from('not a certificate')) })).toEqual({
      step: 'ek-certificate',
      detail: 'the endorsement key certificate is not a DER certificate',
    });
  });

  it('an EK certificate of another manufacturer', async () => {
    const other = await rootCa('Other Manufacturer');
    expect(await beginRefusal(setup(), { ek_certificate: await ekCertificate(other, spkiOf(ek.publicKey)) })).toEqual({
      step: 'ek-certificate',
      detail:
        'the endorsement key certificate is not from a trusted TPM manufacturer: the certificate (issuer "CN=Other Manufacturer") does not chain to a trusted root',
    });
  });

  it('an EK certificate whose key Node cannot read', async () => {
    // SubjectPublicKeyInfo { algorithm 1.2.3.4, key 00 01 02 }.
    const unknown = Buffer.from('300c' + '300506032a0304' + '0303000102', 'hex');
    expect(await beginRefusal(setup(), { ek_certificate: await ekCertificate(manufacturer, unknown) })).toEqual({
      step: 'ek-certificate',
      detail: 'the endorsement key certificate holds no usable key',
    });
  });

  it('an ECC endorsement key', async () => {
    const ecEk = await ekCertificate(manufacturer, spkiOf(otherKey.publicKey));
    expect(await beginRefusal(setup(), { ek_certificate: ecEk })).toEqual({
      step: 'ek-certificate',
      detail: 'only RSA endorsement keys (NV index 0x01c00002) are supported',
    });
  });

  it('an attestation key whose public area cannot be read', async () => {
    expect(await beginRefusal(setup(), { ak_public: b64url(Buffer.from([0, 0x23, 0])) })).toEqual({
      step: 'format',
      detail: "the attestation key's public area cannot be read: TPMT_PUBLIC is truncated",
    });
  });

  it.each([
    ['fixedTPM', TPMA_OBJECT.fixedTPM],
    ['fixedParent', TPMA_OBJECT.fixedParent],
    ['sensitiveDataOrigin', TPMA_OBJECT.sensitiveDataOrigin],
    ['restricted', TPMA_OBJECT.restricted],
    ['sign', TPMA_OBJECT.sign],
  ])('an attestation key without %s', async (_, bit) => {
    const akPublic = eccArea(ak.publicKey, { attributes: AK_ATTRIBUTES & ~bit });
    expect(await beginRefusal(setup(), { ak_public: b64url(sized(akPublic)) })).toEqual({
      step: 'format',
      detail: 'the attestation key must be a restricted signing key with fixedTPM, fixedParent and sensitiveDataOrigin',
    });
  });

  it('an attestation key that is not on P-256', async () => {
    const akPublic = eccArea(ak.publicKey, { attributes: AK_ATTRIBUTES, curve: 0x0004 });
    expect(await beginRefusal(setup(), { ak_public: b64url(akPublic) })).toEqual({
      step: 'format',
      detail: 'the attestation key is not usable: the ECC key is not on P-256',
    });
  });

  it('an attestation key whose name is not SHA-256', async () => {
    const akPublic = eccArea(ak.publicKey, { attributes: AK_ATTRIBUTES, nameAlg: 0x0004 });
    expect(await beginRefusal(setup(), { ak_public: b64url(akPublic) })).toEqual({
      step: 'format',
      detail: 'the attestation key has no usable name: the key’s name algorithm is not SHA-256',
    });
  });
});

describe('begin, at its limits', () => {
  it('refuses a person who holds perUser activations with the quota, naming when to retry', async () => {
    const s = setup({ perUser: 2, lifetime: 100 });
    await begin(s.verifier);
    s.now = T0 + 30;
    await begin(s.verifier);
    const error = await begin(s.verifier).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(QuotaExceeded);
    expect({ ...(error as QuotaExceeded), message: (error as Error).message }).toEqual({
      scope: 'user',
      detail: 'This account already has 2 TPM attestations in progress; finish one or wait for them to expire.',
      retryAfterSeconds: 70,
      name: 'QuotaExceeded',
      message: 'This account already has 2 TPM attestations in progress; finish one or wait for them to expire.',
    });
    // Another person is not limited by this one's activations.
    expect((await begin(s.verifier, { userId: 'user-2' })).secret).toHaveLength(32);
  });

  it('refuses when the whole store is full', async () => {
    const s = setup({ maxPending: 1 });
    await begin(s.verifier, { userId: 'user-2' });
    expect(await refusalOf(begin(s.verifier))).toEqual({ step: 'format', detail: 'too many attestations in progress' });
  });
});

// --- complete ------------------------------------------------------------------------------------

describe('complete refuses, and the activation is used up', () => {
  it('a nonce no credential was issued for, or another person’s', async () => {
    const s = setup();
    const started = await begin(s.verifier);
    expect(await refusalOf(s.verifier.complete(USER, newNonce(), evidence(started), deviceJwk))).toEqual(NO_CREDENTIAL);
    expect(await refusalOf(s.verifier.complete('user-2', started.nonce, evidence(started), deviceJwk))).toEqual(
      NO_CREDENTIAL,
    );
    // Neither attempt took this person's activation.
    expect(await s.verifier.complete(USER, started.nonce, evidence(started), deviceJwk)).toEqual(EK_IDENTITY());
  });

  it('an activation a store hands out for another person', async () => {
    const s = setup();
    const started = await begin(s.verifier);
    const held = s.store.holds[0]!.activation;
    const verifier = new TpmAttestationVerifier(roots, new FixedStore({ ...held, userId: 'user-2' }), 120, () => T0);
    expect(await refusalOf(verifier.complete(USER, started.nonce, evidence(started), deviceJwk))).toEqual(
      NO_CREDENTIAL,
    );
    const same = new TpmAttestationVerifier(roots, new FixedStore(held), 120, () => T0);
    expect(await same.complete(USER, started.nonce, evidence(started), deviceJwk)).toEqual(EK_IDENTITY());
  });

  it('an activation whose attestation key a store hands out unreadable or unusable', async () => {
    const s = setup();
    const started = await begin(s.verifier);
    const held = s.store.holds[0]!.activation;
    const unreadable = new FixedStore({ ...held, attestationKeyPublic: b64url(Buffer.from([0, 0x23])) });
    expect(
      await refusalOf(
        new TpmAttestationVerifier(roots, unreadable, 120, () => T0).complete(
          USER,
          started.nonce,
          evidence(started),
          deviceJwk,
        ),
      ),
    ).toEqual({ step: 'format', detail: "the attestation key's public area cannot be read: TPMT_PUBLIC is truncated" });
    const p384 = new FixedStore({
      ...held,
      attestationKeyPublic: b64url(eccArea(ak.publicKey, { attributes: AK_ATTRIBUTES, curve: 0x0004 })),
    });
    expect(
      await refusalOf(
        new TpmAttestationVerifier(roots, p384, 120, () => T0).complete(
          USER,
          started.nonce,
          evidence(started),
          deviceJwk,
        ),
      ),
    ).toEqual({ step: 'format', detail: 'the attestation key is not usable: the ECC key is not on P-256' });
  });

  it('a secret other than the one sealed, of the same or another length', async () => {
    const mismatch = {
      step: 'credential-activation',
      detail:
        'the activated credential does not match: the attestation key is not in the TPM that holds this endorsement key',
    };
    const s = setup();
    const wrong = await begin(s.verifier);
    const flipped = Buffer.from(wrong.secret);
    flipped[31] = flipped[31]! ^ 1;
    expect(await completeRefusal(s, wrong, evidence(wrong, { secret: flipped }))).toEqual(mismatch);
    const short = await begin(s.verifier);
    expect(await completeRefusal(s, short, evidence(short, { secret: short.secret.subarray(0, 31) }))).toEqual(
      mismatch,
    );
    const long = await begin(s.verifier);
    expect(await completeRefusal(s, long, evidence(long, { secret: cat(long.secret, Buffer.from([0])) }))).toEqual(
      mismatch,
    );
  });

  it('a certification that cannot be read', async () => {
    const s = setup();
    const started = await begin(s.verifier);
    const ev = { ...evidence(started), certify_info: b64url(Buffer.from([0xff, 0x54, 0x43])) };
    expect(await completeRefusal(s, started, ev)).toEqual({
      step: 'certification',
      detail: 'the certification cannot be read: TPMS_ATTEST is truncated',
    });
  });

  it('a certification without the TPM’s magic', async () => {
    const s = setup();
    const started = await begin(s.verifier);
    expect(await completeRefusal(s, started, evidence(started, { magic: 0xff544348 }))).toEqual({
      step: 'certification',
      detail: 'the certification was not generated by a TPM (magic)',
    });
  });

  it.each([
    ['a quote', 0x8018],
    ['a command audit', 0x8015],
  ])('an attestation of another type (%s)', async (_, type) => {
    const s = setup();
    const started = await begin(s.verifier);
    // A quote's TPMS_ATTEST is not followed by a certified name; the parser stops before the rest.
    expect(await completeRefusal(s, started, evidence(started, { type }))).toEqual({
      step: 'certification',
      detail: 'the attestation is not a TPM2_CertifyCreation or TPM2_Certify result (type)',
    });
  });

  it('a certification over another nonce, of the same or another length', async () => {
    const notOverNonce = { step: 'certification', detail: 'the certification is not over this challenge’s nonce' };
    const s = setup();
    const other = await begin(s.verifier);
    expect(await completeRefusal(s, other, evidence(other, { extraData: randomBytes(32) }))).toEqual(notOverNonce);
    const short = await begin(s.verifier);
    const prefix = Buffer.from(short.nonce, 'base64url').subarray(0, 31);
    expect(await completeRefusal(s, short, evidence(short, { extraData: prefix }))).toEqual(notOverNonce);
    const empty = await begin(s.verifier);
    expect(await completeRefusal(s, empty, evidence(empty, { extraData: Buffer.alloc(0) }))).toEqual(notOverNonce);
  });

  it('a certification not signed by the activated AK, or not over these bytes, or not SHA-256', async () => {
    const notSigned = {
      step: 'certification',
      detail: 'the certification is not signed by the activated attestation key',
    };
    const s = setup();
    const byOther = await begin(s.verifier);
    expect(await completeRefusal(s, byOther, evidence(byOther, { signer: otherKey.privateKey }))).toEqual(notSigned);
    const otherBytes = await begin(s.verifier);
    expect(await completeRefusal(s, otherBytes, evidence(otherBytes, { signed: Buffer.from('other bytes') }))).toEqual(
      notSigned,
    );
    const sha1 = await begin(s.verifier);
    expect(await completeRefusal(s, sha1, evidence(sha1, { hashAlg: 0x0004 }))).toEqual(notSigned);
    const unreadable = await begin(s.verifier);
    expect(await completeRefusal(s, unreadable, evidence(unreadable, { signature: u16(TPM_ALG.ECDSA) }))).toEqual(
      notSigned,
    );
    // An RSA AK's signature made by another RSA key.
    const rsa = await begin(s.verifier, { akPublic: rsaArea(akRsa.publicKey), akPrivate: akRsa.privateKey });
    const otherRsa = generateKeyPairSync('rsa', RSA).privateKey;
    expect(await completeRefusal(s, rsa, evidence(rsa, { signer: otherRsa }))).toEqual(notSigned);
  });

  it('a signature over the TPM2B_ATTEST, size field included, instead of the TPMS_ATTEST in it', async () => {
    const s = setup();
    const started = await begin(s.verifier);
    const info = attest({
      extraData: Buffer.from(started.nonce, 'base64url'),
      name: nameOf(eccArea(deviceKey.publicKey)),
    });
    // The signature over the whole TPM2B: the verifier must strip the size prefix only when it is one.
    const ev = evidence(started, { signed: sized(info) });
    expect(await completeRefusal(s, started, ev)).toEqual({
      step: 'certification',
      detail: 'the certification is not signed by the activated attestation key',
    });
  });

  it('a device public area that cannot be read, or whose name is not SHA-256', async () => {
    const s = setup();
    const unreadable = await begin(s.verifier);
    const ev = { ...evidence(unreadable), device_public: b64url(Buffer.from([0, 0x23, 0, 0x0b])) };
    expect(await completeRefusal(s, unreadable, ev)).toEqual({
      step: 'device-key',
      detail: "the device key's public area cannot be read: TPMT_PUBLIC is truncated",
    });
    const sha1Name = await begin(s.verifier);
    const devicePublic = eccArea(deviceKey.publicKey, { nameAlg: 0x0004 });
    expect(
      await completeRefusal(s, sha1Name, evidence(sha1Name, { devicePublic, name: nameOf(devicePublic) })),
    ).toEqual({
      step: 'device-key',
      detail: 'the device key has no usable name: the key’s name algorithm is not SHA-256',
    });
  });

  it('a certification of another key than the device key sent', async () => {
    const otherName = { step: 'certification', detail: 'the certification is of another key than the device key sent' };
    const s = setup();
    const other = await begin(s.verifier);
    const name = nameOf(eccArea(otherKey.publicKey));
    expect(await completeRefusal(s, other, evidence(other, { name }))).toEqual(otherName);
    const short = await begin(s.verifier);
    expect(
      await completeRefusal(s, short, evidence(short, { name: nameOf(eccArea(deviceKey.publicKey)).subarray(0, 33) })),
    ).toEqual(otherName);
    // The same key with other attributes has another name.
    const attributes = await begin(s.verifier);
    const name2 = nameOf(eccArea(deviceKey.publicKey, { attributes: DEVICE_ATTRIBUTES | TPMA_OBJECT.decrypt }));
    expect(await completeRefusal(s, attributes, evidence(attributes, { name: name2 }))).toEqual(otherName);
  });

  it.each([
    ['fixedTPM', TPMA_OBJECT.fixedTPM],
    ['fixedParent', TPMA_OBJECT.fixedParent],
    ['sensitiveDataOrigin', TPMA_OBJECT.sensitiveDataOrigin],
    ['sign', TPMA_OBJECT.sign],
  ])('a device key without %s', async (_, bit) => {
    const s = setup();
    const started = await begin(s.verifier);
    const devicePublic = eccArea(deviceKey.publicKey, { attributes: DEVICE_ATTRIBUTES & ~bit });
    expect(await completeRefusal(s, started, evidence(started, { devicePublic }))).toEqual({
      step: 'device-key',
      detail:
        'the device key must be a signing key with fixedTPM, fixedParent and sensitiveDataOrigin (created in and bound to this TPM)',
    });
  });

  it.each([
    ['restricted', TPMA_OBJECT.restricted],
    ['decrypt', TPMA_OBJECT.decrypt],
  ])('a %s device key', async (_, bit) => {
    const s = setup();
    const started = await begin(s.verifier);
    const devicePublic = eccArea(deviceKey.publicKey, { attributes: DEVICE_ATTRIBUTES | bit });
    expect(await completeRefusal(s, started, evidence(started, { devicePublic }))).toEqual({
      step: 'device-key',
      detail: 'the device key must be an unrestricted signing-only key',
    });
  });

  it('a device key that is RSA or on another curve than P-256', async () => {
    const notP256 = { step: 'device-key', detail: 'the device key is not P-256' };
    const s = setup();
    const rsa = await begin(s.verifier);
    const rsaPublic = rsaArea(akRsa.publicKey, { attributes: DEVICE_ATTRIBUTES });
    expect(await completeRefusal(s, rsa, evidence(rsa, { devicePublic: rsaPublic }))).toEqual(notP256);
    const p384 = await begin(s.verifier);
    const p384Public = eccArea(deviceKey.publicKey, { curve: 0x0004 });
    expect(await completeRefusal(s, p384, evidence(p384, { devicePublic: p384Public }))).toEqual(notP256);
  });

  it('a device key that is not the key of the DPoP proof: another point or curve', async () => {
    const notDpopKey = {
      step: 'device-key',
      detail: 'the attested device key is not the key that signed the DPoP proof or certified the session key',
    };
    const { x, y } = otherKey.publicKey.export({ format: 'jwk' });
    for (const jwk of [
      { ...deviceJwk, crv: 'P-384' },
      { x: deviceJwk.x, y: deviceJwk.y },
      { ...deviceJwk, x },
      { ...deviceJwk, y },
      { crv: 'P-256' },
    ]) {
      const s = setup();
      const started = await begin(s.verifier);
      expect(await completeRefusal(s, started, evidence(started), jwk)).toEqual(notDpopKey);
    }
  });
});
