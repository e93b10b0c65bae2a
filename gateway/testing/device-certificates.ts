import { randomBytes, webcrypto } from 'node:crypto';
import { x509 } from '../device/attestation/certificate-chain';

/** A certificate with its private key, PEM, as Node's TLS takes them. */
export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certificate: x509.X509Certificate;
  /** The key as WebCrypto holds it, to sign certificates it issues. */
  readonly privateKey: CryptoKey;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
}

/** A self-signed CA certificate (an organisation's device CA in tests). */
export async function createTestCa(name: string): Promise<IssuedCertificate> {
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return {
    certPem: certificate.toString('pem'),
    keyPem: await keyPem(keys.privateKey),
    certificate,
    privateKey: keys.privateKey,
  };
}

/**
 * A certificate `issuer` signs: a device certificate (client authentication) by default, or a TLS
 * server certificate for `127.0.0.1` and `localhost` with `usage: 'server'`.
 */
export async function issueCertificate(
  issuer: IssuedCertificate,
  subject: string,
  options: { readonly usage?: 'client' | 'server'; readonly validUntil?: Date } = {},
): Promise<IssuedCertificate> {
  const keys = await keyPair();
  const usage = options.usage ?? 'client';
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: `CN=${subject}`,
    issuer: issuer.certificate.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: options.validUntil ?? new Date(Date.now() + 7 * DAY),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: issuer.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([
        usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth,
      ]),
      ...(usage === 'server'
        ? [
            new x509.SubjectAlternativeNameExtension([
              { type: 'ip', value: '127.0.0.1' },
              { type: 'dns', value: 'localhost' },
            ]),
          ]
        : []),
    ],
  });
  return {
    certPem: certificate.toString('pem'),
    keyPem: await keyPem(keys.privateKey),
    certificate,
    privateKey: keys.privateKey,
  };
}

/** A certificate with the key pair it certifies: what unit tests shape certificate by certificate. */
export interface MadeCertificate {
  readonly certificate: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

/**
 * A P-256 certificate for `CN=<name>` with exactly the `extensions` given: self-signed without
 * `issuer`, else signed by `signingKey` (a forged signature) or by the issuer's key.
 */
export async function makeCertificate(
  name: string,
  issuer: MadeCertificate | undefined,
  options: {
    readonly extensions: x509.Extension[];
    readonly notBefore: Date;
    readonly notAfter: Date;
    readonly serialNumber?: string;
    readonly signingKey?: CryptoKey;
  },
): Promise<MadeCertificate> {
  const keys = await keyPair();
  const common = {
    serialNumber: options.serialNumber ?? randomBytes(8).toString('hex'),
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    signingAlgorithm: ALGORITHM,
    extensions: options.extensions,
  };
  const certificate = issuer
    ? await x509.X509CertificateGenerator.create({
        ...common,
        subject: `CN=${name}`,
        issuer: issuer.certificate.subject,
        publicKey: keys.publicKey,
        signingKey: options.signingKey ?? issuer.keys.privateKey,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: `CN=${name}`, keys });
  return { certificate, keys };
}
