import type { DiscoveryDocument } from '../../shared/discovery';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * Why `url` may not be used for `setting`, or undefined when it may.
 *
 * The installed app speaks only https; a development build may also use http on a loopback address
 * (the demo stack). The message names the setting so IT knows what to change.
 */
export function transportProblem(url: string, setting: string, packaged: boolean): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${setting} ("${url}") is not a URL.`;
  }
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:' && !packaged && LOOPBACK_HOSTS.has(parsed.hostname)) return undefined;
  return packaged
    ? `${setting} must be an https:// URL in the installed app (it is "${url}").`
    : `${setting} must be an https:// URL; http:// is allowed only for a loopback address in development (it is "${url}").`;
}

/** Throws {@link transportProblem}'s message when `url` may not be used. */
export function requireSecureTransport(url: string, setting: string, packaged: boolean): void {
  const problem = transportProblem(url, setting, packaged);
  if (problem) throw new Error(problem);
}

/**
 * Every URL a discovery document tells the app to use, each checked as its own setting.
 */
export function discoveryTransportProblems(document: DiscoveryDocument, packaged: boolean): string[] {
  const urls: readonly (readonly [string, string])[] = [
    ['The gateway discovery issuer', document.issuer],
    ['The gateway discovery jwks_uri', document.jwks_uri],
    ['The identity provider authority (discovery identity_provider.authority)', document.identity_provider.authority],
    ...Object.entries(document.endpoints).map(
      ([name, url]) => [`The gateway discovery endpoint ${name}`, url] as const,
    ),
  ];
  return urls.flatMap(([setting, url]) => transportProblem(url, setting, packaged) ?? []);
}
