import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { readStateFile, writeStateFile } from './state-files';

/** The development identity provider's TLS material: its own CA and a `localhost` certificate it signed. */
export interface TlsMaterial {
  readonly caCertPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const CA_CERT = 'ca.cert.pem';
const CA_KEY = 'ca.key.pem';
const TLS_CERT = 'tls.cert.pem';
const TLS_KEY = 'tls.key.pem';

/** A certificate closer than this to its end is replaced at start. */
const RENEW_BEFORE_MS = 14 * 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Loads the CA and `localhost` certificate from `stateDir`, making whatever is missing or expiring.
 *
 * The CA (ten years) is kept across starts so a client that trusts it once keeps trusting it; the
 * server certificate (one year, SANs `localhost`, `127.0.0.1`, `::1`) is re-issued from that CA
 * when it is missing, does not chain to the CA, or is within two weeks of its end.
 */
export async function loadOrCreateTlsMaterial(stateDir: string, now: Date = new Date()): Promise<TlsMaterial> {
  let ca = await loadPair(stateDir, CA_CERT, CA_KEY);
  if (!ca || !isCurrentCa(ca.cert, now)) {
    ca = await createCa(now);
    await writeStateFile(stateDir, CA_KEY, ca.key, { secret: true });
    await writeStateFile(stateDir, CA_CERT, ca.cert);
  }
  let leaf = await loadPair(stateDir, TLS_CERT, TLS_KEY);
  if (!leaf || !isCurrentLeaf(leaf.cert, ca.cert, now)) {
    leaf = await createLocalhostCertificate(ca, now);
    await writeStateFile(stateDir, TLS_KEY, leaf.key, { secret: true });
    await writeStateFile(stateDir, TLS_CERT, leaf.cert);
  }
  return { caCertPem: ca.cert, certPem: leaf.cert, keyPem: leaf.key };
}

interface CertificatePair {
  readonly cert: string;
  readonly key: string;
}

async function loadPair(stateDir: string, certName: string, keyName: string): Promise<CertificatePair | undefined> {
  const cert = await readStateFile(stateDir, certName);
  const key = await readStateFile(stateDir, keyName);
  return cert && key ? { cert, key } : undefined;
}

function parse(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function isCurrentCa(pem: string, now: Date): boolean {
  const cert = parse(pem);
  return !!cert && cert.ca && Date.parse(cert.validTo) - now.getTime() > RENEW_BEFORE_MS;
}

function isCurrentLeaf(pem: string, caPem: string, now: Date): boolean {
  const cert = parse(pem);
  const ca = parse(caPem);
  if (!cert || !ca) return false;
  return (
    cert.checkIssued(ca) &&
    cert.verify(ca.publicKey) &&
    cert.checkHost('localhost') !== undefined &&
    Date.parse(cert.validTo) - now.getTime() > RENEW_BEFORE_MS
  );
}

async function createCa(now: Date): Promise<CertificatePair> {
  const pems = await generate(
    [
      { name: 'commonName', value: 'Clearance development identity provider CA' },
      { name: 'organizationName', value: 'Clearance (development only)' },
    ],
    {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now.getTime() - DAY_MS),
      notAfterDate: new Date(now.getTime() + 3650 * DAY_MS),
      extensions: [
        { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    },
  );
  return { cert: pems.cert, key: pems.private };
}

async function createLocalhostCertificate(ca: CertificatePair, now: Date): Promise<CertificatePair> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - DAY_MS),
    notAfterDate: new Date(now.getTime() + 365 * DAY_MS),
    ca: { key: ca.key, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
