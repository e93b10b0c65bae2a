import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { certificateFingerprint, TrustBundle, x509 } from './certificate-chain';

/** How a TLS-terminating proxy in front of the gateway forwards the client's certificate. */
export type ForwardedCertificateFormat = 'xfcc' | 'client-cert' | 'pem';

/** Managed-device certificates (GatewayOptions.deviceTrust.deviceCertificates). */
export interface DeviceCertificateOptions {
  /** PEM bundle of the CA certificates (roots, and intermediates) that issue the organisation's device certificates. */
  readonly ca: string | readonly string[];
  /**
   * A TLS-terminating proxy that forwards the client certificate in a header. Only requests whose
   * TCP peer is one of `addresses` may carry it; from any other peer the header is ignored.
   */
  readonly trustedProxy?: {
    /** IP addresses the proxy connects from (exact, IPv4 or IPv6). */
    readonly addresses: readonly string[];
    /**
     * `xfcc`: Envoy's `x-forwarded-client-cert` (`Cert="<URL-encoded PEM>"`, the last element is the
     * nearest proxy's); `client-cert`: RFC 9440 `client-cert` (`:<base64 DER>:`) with
     * `client-cert-chain`; `pem`: a URL-encoded PEM (nginx `$ssl_client_escaped_cert`). Default `xfcc`.
     */
    readonly format?: ForwardedCertificateFormat;
    /** The header's name; default `x-forwarded-client-cert` (xfcc), `client-cert`, or `x-ssl-client-cert` (pem). */
    readonly header?: string;
  };
}

/** A device certificate the gateway verified against the organisation's CA. */
export interface VerifiedDeviceCertificate {
  readonly subject: string;
  readonly issuer: string;
  /** Hex, as the certificate states it. */
  readonly serial: string;
  /** SHA-256 of the DER, hex. */
  readonly fingerprint: string;
  readonly notAfter: string;
  /** Whether the gateway's own TLS or a trusted proxy saw it. */
  readonly via: 'tls' | 'proxy';
}

/** What a request proved with its client certificate. */
export type DeviceCertificateResult =
  { readonly verified: VerifiedDeviceCertificate } | { readonly verified?: undefined; readonly detail: string };

/** The parts of a request the verifier reads. */
export interface CertificateSource {
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly headers: IncomingHttpHeaders;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DEFAULT_HEADERS: Readonly<Record<ForwardedCertificateFormat, string>> = {
  xfcc: 'x-forwarded-client-cert',
  'client-cert': 'client-cert',
  pem: 'x-ssl-client-cert',
};

/** `::ffff:10.0.0.1` and `10.0.0.1` are the same peer. */
function normaliseAddress(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const bare = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  // Stryker disable next-line MethodExpression: the configured addresses and the peer's are folded alike, so upper case matches the same
  return bare.toLowerCase();
}

/**
 * Verifies the managed-device certificate a client presents: by mutual TLS to the gateway itself,
 * or forwarded by a configured proxy in one of the standard header forms (never from another peer).
 *
 * The certificate must chain (signatures and validity) to the configured CA and, when it names
 * extended key usages, allow client authentication. Chain building and parsing are `@peculiar/x509`'s.
 */
export class DeviceCertificateVerifier {
  private readonly bundle: TrustBundle;
  private readonly proxies: ReadonlySet<string>;
  private readonly format: ForwardedCertificateFormat;
  private readonly header: string;

  constructor(
    options: DeviceCertificateOptions,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.bundle = TrustBundle.fromPem(options.ca, 'The device certificate CA bundle');
    const addresses = options.trustedProxy?.addresses ?? [];
    const bad = addresses.filter((address) => isIP(address) === 0);
    if (bad.length > 0) {
      throw new Error(`The trusted proxy addresses must be IP addresses: ${bad.map((a) => `"${a}"`).join(', ')}`);
    }
    this.proxies = new Set(addresses.map((address) => normaliseAddress(address)!));
    this.format = options.trustedProxy?.format ?? 'xfcc';
    this.header = (options.trustedProxy?.header ?? DEFAULT_HEADERS[this.format]).toLowerCase();
  }

  /** The CA certificates, PEM, for the TLS server's certificate request (clients pick a matching certificate). */
  get caPem(): readonly string[] {
    return this.bundle.certificates.map((certificate) => certificate.toString('pem'));
  }

  /** Verifies the certificate `request` carries; says why when there is none that holds. */
  async verify(request: CertificateSource): Promise<DeviceCertificateResult> {
    const direct = peerCertificates(request.socket);
    if (direct) return this.check(direct.leaf, direct.chain, 'tls');
    const forwarded = request.headers[this.header];
    if (forwarded === undefined) {
      return { detail: 'no client certificate was presented (by mutual TLS or a trusted proxy)' };
    }
    const peer = normaliseAddress(request.socket.remoteAddress);
    if (!peer || !this.proxies.has(peer)) {
      return {
        detail: `a forwarded client certificate (${this.header}) came from ${peer ?? 'an unknown peer'}, which is not a trusted proxy; it was ignored`,
      };
    }
    let parsed: { leaf: x509.X509Certificate; chain: x509.X509Certificate[] } | undefined;
    try {
      parsed = this.parseForwarded(forwarded, request.headers);
    } catch (error) {
      return { detail: `the trusted proxy's ${this.header} header cannot be read: ${(error as Error).message}` };
    }
    if (!parsed) return { detail: `the trusted proxy's ${this.header} header holds no certificate` };
    return this.check(parsed.leaf, parsed.chain, 'proxy');
  }

  private async check(
    leaf: x509.X509Certificate,
    intermediates: readonly x509.X509Certificate[],
    via: 'tls' | 'proxy',
  ): Promise<DeviceCertificateResult> {
    try {
      await this.bundle.verify(leaf, intermediates, this.clock());
    } catch (error) {
      return {
        detail: `the client certificate "${leaf.subject}" is not from the organisation's device CA: ${(error as Error).message}`,
      };
    }
    const usage = leaf.getExtension(x509.ExtendedKeyUsageExtension);
    if (usage && !usage.usages.map(String).includes(CLIENT_AUTH)) {
      return {
        detail: `the client certificate "${leaf.subject}" is not for client authentication (extended key usage)`,
      };
    }
    return {
      verified: {
        subject: leaf.subject,
        issuer: leaf.issuer,
        serial: leaf.serialNumber,
        fingerprint: certificateFingerprint(leaf),
        notAfter: leaf.notAfter.toISOString(),
        via,
      },
    };
  }

  private parseForwarded(
    value: string | readonly string[],
    headers: IncomingHttpHeaders,
  ): { leaf: x509.X509Certificate; chain: x509.X509Certificate[] } | undefined {
    const text = typeof value === 'string' ? value : value.join(',');
    switch (this.format) {
      case 'pem':
        return pemChain(decodeURIComponent(text));
      case 'client-cert': {
        const leaf = new x509.X509Certificate(new Uint8Array(byteSequence(text)));
        const chainHeader = headers['client-cert-chain'];
        const chainText = Array.isArray(chainHeader) ? chainHeader.join(',') : (chainHeader ?? '');
        const chain = chainText
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item.length > 0)
          .map((item) => new x509.X509Certificate(new Uint8Array(byteSequence(item))));
        return { leaf, chain };
      }
      case 'xfcc': {
        // Each proxy appends its own element; the last is the one the trusted (nearest) proxy added.
        // There is always a last part (perhaps empty, which holds no Cert).
        const element = splitOutsideQuotes(text, ',').at(-1)!;
        const pairs = new Map<string, string>();
        for (const pair of splitOutsideQuotes(element, ';')) {
          const at = pair.indexOf('=');
          if (at === -1) continue;
          pairs.set(pair.slice(0, at).trim().toLowerCase(), unquote(pair.slice(at + 1).trim()));
        }
        const cert = pairs.get('cert');
        if (!cert) return undefined;
        const leaf = pemChain(decodeURIComponent(cert))?.leaf;
        if (!leaf) return undefined;
        const chain = pairs.get('chain');
        // Stryker disable next-line StringLiteral: without a Chain pair any text that holds no PEM block reads as no chain
        return { leaf, chain: pemChain(decodeURIComponent(chain ?? ''))?.all ?? [] };
      }
    }
  }
}

/** The client certificate of a TLS connection (with the chain it sent), if any. */
function peerCertificates(
  socket: CertificateSource['socket'],
): { leaf: x509.X509Certificate; chain: x509.X509Certificate[] } | undefined {
  const tls = socket as Partial<TLSSocket>;
  if (typeof tls.getPeerCertificate !== 'function' || !tls.encrypted) return undefined;
  const peer = tls.getPeerCertificate(true);
  if (!peer?.raw) return undefined;
  const leaf = new x509.X509Certificate(new Uint8Array(peer.raw));
  const chain: x509.X509Certificate[] = [];
  let issuer = peer.issuerCertificate;
  // Stryker disable next-line ArrayDeclaration: Node points only a self-signed leaf back at itself, and such a leaf chains to nothing with or without itself among the intermediates
  const seen = new Set<string>([peer.fingerprint256]);
  while (issuer?.raw && !seen.has(issuer.fingerprint256)) {
    seen.add(issuer.fingerprint256);
    chain.push(new x509.X509Certificate(new Uint8Array(issuer.raw)));
    issuer = issuer.issuerCertificate;
  }
  return { leaf, chain };
}

function pemChain(
  text: string,
): { leaf: x509.X509Certificate; chain: x509.X509Certificate[]; all: x509.X509Certificate[] } | undefined {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const all = blocks.map((block) => new x509.X509Certificate(block));
  const [leaf, ...chain] = all;
  return leaf ? { leaf, chain, all } : undefined;
}

/** An RFC 8941 byte sequence `:base64:`. */
function byteSequence(text: string): Buffer {
  const match = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(text.trim());
  if (!match) throw new Error('not a structured-field byte sequence (:base64:)');
  return Buffer.from(match[1]!, 'base64');
}

/**
 * Splits at `separator` outside double quotes; a backslash inside quotes takes the next character as it is.
 * Parts are returned as written (the caller trims names and values), empty ones included: the last
 * xfcc element is the nearest proxy's even when it is empty, never the one before it.
 */
function splitOutsideQuotes(text: string, separator: string): string[] {
  // Stryker disable next-line ArrayDeclaration: an extra first part is never the last element, and as a pair it has no "="
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === '\\' && quoted) {
      // A backslash that ends the text leaves the quote open, which is refused below.
      current += char + text.charAt(++i);
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === separator && !quoted) {
      parts.push(current);
      current = '';
      continue;
    }
    current += char;
  }
  // An unclosed quote would swallow every later element, the trusted proxy's own included, and
  // leave a client's text as "the last element": refuse the header instead.
  if (quoted) throw new Error('an unclosed quote');
  parts.push(current);
  return parts;
}

/** A quoted value without its quotes and escapes; any other value as it is. */
function unquote(value: string): string {
  if (!value.startsWith('"') || !value.endsWith('"')) return value;
  // Stryker disable next-line MethodExpression: the values read (Cert, Chain) are searched for PEM blocks, which quotes around them do not hide
  const inner = value.slice(1, -1);
  return inner.replace(/\\(.)/g, '$1');
}
