import type { DiscoveryDocument } from '../../shared/discovery';
import type { ManagedConfig } from '../config/managed';

/** How the app signs in: which provider, as which client, for which scopes. */
export interface IdentityConfig {
  /** `https://login.microsoftonline.com/<tenant-id>` for Entra; the issuer URL for any other OIDC provider. */
  readonly authority: string;
  readonly clientId: string;
  /** The gateway's scopes, e.g. `api://<app-id>/access_as_user`; MSAL adds `openid profile offline_access`. */
  readonly scopes: readonly string[];
  /** `AAD` for Microsoft Entra ID, `OIDC` for any other OpenID Connect provider. */
  readonly protocol: 'AAD' | 'OIDC';
  /** An extra CA trusted for the provider's TLS (the development provider's); never needed for Entra. */
  readonly caCertPem?: string;
  /** Persist tokens even when the Linux secret store is `basic_text` (a managed-config choice, off by default). */
  readonly allowBasicTextPersistence?: boolean;
}

/** Hosts of Microsoft Entra ID's public and sovereign clouds. */
const ENTRA_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoftonline.us',
  'login.partner.microsoftonline.cn',
  'login.chinacloudapi.cn',
  'login.windows.net',
  'login.microsoft.com',
  'sts.windows.net',
]);

/** True when `authority` is a Microsoft Entra ID authority (which speaks MSAL's `AAD` protocol). */
export function isEntraAuthority(authority: string): boolean {
  try {
    return ENTRA_HOSTS.has(new URL(authority).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/**
 * The identity settings from the gateway's discovery document, with IT's managed overrides applied.
 *
 * A managed `authority` replaces the discovered one (its protocol follows from its host) and drops
 * the development CA, which belongs to the discovered provider only; a managed `clientId` replaces
 * the discovered client; `allowBasicTextTokenCache` is honoured only from managed config.
 */
export function resolveIdentityConfig(
  discovered: DiscoveryDocument['identity_provider'],
  managed: Pick<ManagedConfig, 'authority' | 'clientId' | 'allowBasicTextTokenCache'>,
  developmentCaCertPem?: string,
): IdentityConfig {
  const authority = managed.authority ?? discovered.authority;
  const overridden = managed.authority !== undefined && managed.authority !== discovered.authority;
  const protocol = overridden ? (isEntraAuthority(authority) ? 'AAD' : 'OIDC') : discovered.protocol;
  const caCertPem = overridden ? undefined : developmentCaCertPem;
  return {
    authority,
    clientId: managed.clientId ?? discovered.client_id,
    scopes: [...discovered.scopes],
    protocol,
    ...(caCertPem ? { caCertPem } : {}),
    ...(managed.allowBasicTextTokenCache ? { allowBasicTextPersistence: true } : {}),
  };
}

/**
 * Checks an identity configuration and explains what is wrong in words IT can act on.
 *
 * MSAL requires an https authority; an Entra authority must name a tenant (not `common`,
 * `organizations` or `consumers`: Clearance is a single-organisation app).
 */
export function validateIdentityConfig(config: IdentityConfig): void {
  let url: URL;
  try {
    url = new URL(config.authority);
  } catch {
    throw new Error(`The sign-in authority "${config.authority}" is not a URL`);
  }
  if (url.protocol !== 'https:') throw new Error(`The sign-in authority ${config.authority} must use https`);
  if (!config.clientId.trim()) throw new Error('The sign-in client ID is empty');
  if (config.scopes.length === 0) throw new Error('No sign-in scopes are configured for the gateway');
  if (config.protocol === 'AAD') {
    const tenant = url.pathname.split('/').filter(Boolean)[0];
    if (!tenant) throw new Error(`The Entra authority ${config.authority} must end with the tenant ID`);
    if (['common', 'organizations', 'consumers'].includes(tenant.toLowerCase())) {
      throw new Error(`The Entra authority must name your tenant, not "${tenant}"`);
    }
  }
}
