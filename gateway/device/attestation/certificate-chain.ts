import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Stryker disable next-line CallExpression: on the Node the project pins (24) the library's default provider is globalThis.crypto, this same webcrypto
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** `@peculiar/x509`, loaded after the Reflect polyfill it needs. */
export { x509 };

/** Between the PEM texts of a list: each is a whole PEM text, and a block is found right after another's END line. */
// Stryker disable next-line StringLiteral: as said above, any separator (none included) reads the same certificates
const PEM_LIST_SEPARATOR = '\n';

/** A bundle of trusted CA certificates (roots and, optionally, intermediates) read from PEM. */
export class TrustBundle {
  private constructor(readonly certificates: readonly x509.X509Certificate[]) {}

  /**
   * Reads every certificate in `pem` (one or more PEM texts, concatenated).
   *
   * @throws when the text holds no certificate or one that cannot be read.
   */
  static fromPem(pem: string | readonly string[], what: string): TrustBundle {
    const text = typeof pem === 'string' ? pem : pem.join(PEM_LIST_SEPARATOR);
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new Error(`${what} holds no PEM certificate`);
    try {
      return new TrustBundle(blocks.map((block) => new x509.X509Certificate(block)));
    } catch (error) {
      throw new Error(`${what} holds a certificate that cannot be read: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Verifies that `leaf` chains, signature by signature and within every validity period, to a
   * self-signed certificate of this bundle; returns the chain from the leaf to the root.
   *
   * `intermediates` (sent by the client) may fill gaps but are never trusted on their own.
   * Throws an error naming what failed.
   */
  async verify(
    leaf: x509.X509Certificate,
    intermediates: readonly x509.X509Certificate[] = [],
    at: Date = new Date(),
  ): Promise<readonly x509.X509Certificate[]> {
    const builder = new x509.X509ChainBuilder({ certificates: [...this.certificates, ...intermediates] });
    const chain = [...(await builder.build(leaf))];
    const root = chain.at(-1)!;
    if (chain.length < 2 || !(await root.isSelfSigned())) {
      throw new Error(`the certificate (issuer "${leaf.issuer}") does not chain to a trusted root`);
    }
    const anchored = this.certificates.some((trusted) => trusted.equal(root));
    if (!anchored) throw new Error(`the chain ends at "${root.subject}", which is not a trusted root`);
    for (let i = 0; i < chain.length; i++) {
      const certificate = chain[i]!;
      const issuer = chain[Math.min(i + 1, chain.length - 1)]!;
      if (at < certificate.notBefore || at > certificate.notAfter) {
        throw new Error(`"${certificate.subject}" is not valid at ${at.toISOString()}`);
      }
      // Defence in depth: X509ChainBuilder only links an issuer whose key verifies the signature, and the root
      // passed isSelfSigned() (its own signature) above, so this refusal cannot be reached through the builder.
      // Stryker disable next-line ConditionalExpression,BlockStatement: unreachable, as said above
      if (!(await certificate.verify({ publicKey: issuer.publicKey, signatureOnly: true }))) {
        // Stryker disable next-line StringLiteral,CallExpression: unreachable, as said above
        throw new Error(`the signature on "${certificate.subject}" does not verify with "${issuer.subject}"`);
      }
      // The anchor is IT's configured trust (RFC 5280 §6.1); every certificate between it and the leaf must be a CA.
      if (i > 0 && i < chain.length - 1) assertMayIssue(certificate, i - 1);
    }
    return chain;
  }
}

/**
 * Only a CA certificate may sign another certificate (RFC 5280 §4.2.1.9, §4.2.1.3): basic constraints
 * with `cA: true`, a path length that allows the `below` CA certificates under it, and, when it lists
 * key usages, `keyCertSign`. Without this an end-entity certificate (a device's) could issue more.
 */
function assertMayIssue(certificate: x509.X509Certificate, below: number): void {
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) {
    throw new Error(
      `"${certificate.subject}" is not a CA certificate (basic constraints), so it may not issue certificates`,
    );
  }
  if (below > (constraints.pathLength ?? Infinity)) {
    throw new Error(`"${certificate.subject}" may not issue through ${below} intermediate CA(s) (path length)`);
  }
  const usages = certificate.getExtension(x509.KeyUsagesExtension);
  if (usages && (usages.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new Error(
      `"${certificate.subject}" is not a CA certificate (key usage lacks keyCertSign), so it may not issue certificates`,
    );
  }
}

/** SHA-256 fingerprint of a certificate's DER, lower-case hex. */
export function certificateFingerprint(certificate: x509.X509Certificate): string {
  return createHash('sha256').update(Buffer.from(certificate.rawData)).digest('hex');
}
