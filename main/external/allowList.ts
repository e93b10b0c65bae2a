/**
 * Decides which URLs the app may hand to the system browser.
 *
 * Only https, only hosts on the allow-list (the identity provider, the organisation's remediation
 * sites from the signed entitlement document, IT's managed list). Loopback http is allowed only
 * when the caller says so (the development identity provider).
 */
export function isAllowedExternalUrl(
  raw: string,
  allowedHosts: ReadonlySet<string>,
  options: { readonly allowLoopbackHttp?: boolean } = {},
): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  const host = url.hostname.toLowerCase();
  const loopback = host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  if (url.protocol === 'https:') return allowedHosts.has(host) || (loopback && options.allowLoopbackHttp === true);
  if (url.protocol === 'http:') return loopback && options.allowLoopbackHttp === true;
  return false;
}
