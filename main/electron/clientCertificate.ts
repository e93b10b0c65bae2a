/**
 * Which managed-device certificate the app presents, and to whom (issue 12, mutual TLS).
 *
 * Chromium's network stack asks through Electron's `select-client-certificate` event whenever a
 * server requests a client certificate, listing the identities in the OS store whose issuer the
 * server named. Electron's own default presents the first one to any server that asks, which would
 * hand the device's identity to every site. The app decides instead, in this plain function (tested
 * without Electron): only requests from the main process (`net.fetch`, no web contents) to the
 * gateway's own origin get a certificate; it must be valid now and, when IT names one with the
 * managed setting `deviceCertificateIssuer`, issued by that CA. The private key never leaves the OS
 * store: the app only picks an entry of Chromium's list.
 */

/** The fields of Electron's `Certificate` the choice reads (a structural subset). */
export interface ClientCertificateCandidate {
  readonly issuerName: string;
  readonly issuer: { readonly commonName: string };
  readonly subjectName: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  /** Seconds since the epoch, as Electron gives them. */
  readonly validStart: number;
  readonly validExpiry: number;
}

export interface ClientCertificateRequest {
  /** The URL whose server asked for a certificate. */
  readonly url: string;
  /** Whether a page (web contents) asked, rather than the main process's `net` module. */
  readonly fromPage: boolean;
}

export interface ClientCertificateRules {
  /** The gateway URL in force (managed `gatewayUrl`); nothing is presented without one. */
  readonly gatewayUrl: string | undefined;
  /** Managed `deviceCertificateIssuer`: the issuing CA's common name or full distinguished name. */
  readonly issuer?: string | undefined;
  /** Now, in milliseconds since the epoch. */
  readonly now: number;
}

export type ClientCertificateChoice<T extends ClientCertificateCandidate> =
  { readonly certificate: T; readonly why: string } | { readonly certificate: undefined; readonly why: string };

function originOf(url: string | undefined): string | undefined {
  const parsed = url ? URL.parse(url) : null;
  return parsed?.protocol === 'https:' ? parsed.origin : undefined;
}

/** Names compared as a person would type them (the setting is trimmed when read). */
const sameName = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * Picks the certificate to present, or none (the TLS handshake then continues without one and the
 * gateway explains a `DEVICE_CERTIFICATE_REQUIRED` refusal in its own words). Among several that
 * qualify, the one issued most recently wins (a renewed certificate before the one it replaces).
 */
export function chooseClientCertificate<T extends ClientCertificateCandidate>(
  request: ClientCertificateRequest,
  candidates: readonly T[],
  rules: ClientCertificateRules,
): ClientCertificateChoice<T> {
  if (request.fromPage)
    return { certificate: undefined, why: 'a page asked: device certificates go only to the gateway' };
  const gateway = originOf(rules.gatewayUrl);
  if (!gateway) return { certificate: undefined, why: 'no https gateway is configured' };
  if (originOf(request.url) !== gateway) {
    return { certificate: undefined, why: `${request.url} is not the gateway (${gateway})` };
  }
  const nowSeconds = rules.now / 1000;
  const valid = candidates.filter((c) => c.validStart <= nowSeconds && nowSeconds <= c.validExpiry);
  const issuer = rules.issuer?.trim();
  const fromIssuer = issuer
    ? valid.filter((c) => sameName(c.issuer.commonName, issuer) || sameName(c.issuerName, issuer))
    : valid;
  const [best] = [...fromIssuer].sort((a, b) => b.validStart - a.validStart);
  if (!best) {
    const what = issuer ? `valid certificate issued by ${issuer}` : 'valid certificate';
    return { certificate: undefined, why: `no ${what} among the ${candidates.length} the system offered` };
  }
  return { certificate: best, why: `presenting ${best.subjectName} (serial ${best.serialNumber}) to ${gateway}` };
}
