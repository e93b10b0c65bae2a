import { describe, expect, it } from 'vitest';
import { isEntraAuthority, resolveIdentityConfig, validateIdentityConfig, type IdentityConfig } from './config';

const discovered = {
  authority: 'https://localhost:8443',
  client_id: 'clearance-desktop',
  scopes: ['api://clearance-gateway/access_as_user'],
  protocol: 'OIDC' as const,
};

describe('resolveIdentityConfig', () => {
  it('takes the discovered provider and keeps the development CA for it', () => {
    expect(resolveIdentityConfig(discovered, {}, 'CA')).toEqual({
      authority: 'https://localhost:8443',
      clientId: 'clearance-desktop',
      scopes: ['api://clearance-gateway/access_as_user'],
      protocol: 'OIDC',
      caCertPem: 'CA',
    });
  });

  it('lets managed config replace the authority and client, deriving the protocol and dropping the CA', () => {
    const config = resolveIdentityConfig(
      discovered,
      {
        authority: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555',
        clientId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
        allowBasicTextTokenCache: true,
      },
      'CA',
    );
    expect(config).toEqual({
      authority: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555',
      clientId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      scopes: ['api://clearance-gateway/access_as_user'],
      protocol: 'AAD',
      allowBasicTextPersistence: true,
    });
  });
});

describe('isEntraAuthority', () => {
  it('recognises the public and sovereign Entra clouds only', () => {
    expect(isEntraAuthority('https://login.microsoftonline.com/contoso.onmicrosoft.com')).toBe(true);
    expect(isEntraAuthority('https://login.microsoftonline.us/tenant')).toBe(true);
    expect(isEntraAuthority('https://login.microsoftonline.com.evil.example/tenant')).toBe(false);
    expect(isEntraAuthority('https://keycloak.lab.example/realms/lab')).toBe(false);
    expect(isEntraAuthority('not a url')).toBe(false);
  });
});

describe('validateIdentityConfig', () => {
  const valid: IdentityConfig = {
    authority: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555',
    clientId: 'client',
    scopes: ['api://x/access_as_user'],
    protocol: 'AAD',
  };

  it('accepts a tenant-specific Entra authority', () => {
    expect(() => validateIdentityConfig(valid)).not.toThrow();
  });

  it('refuses http, multi-tenant Entra authorities, an empty client and no scopes', () => {
    expect(() => validateIdentityConfig({ ...valid, authority: 'http://login.microsoftonline.com/t' })).toThrow(
      /https/,
    );
    expect(() => validateIdentityConfig({ ...valid, authority: 'https://login.microsoftonline.com/common' })).toThrow(
      /name your tenant/,
    );
    expect(() => validateIdentityConfig({ ...valid, authority: 'https://login.microsoftonline.com/' })).toThrow(
      /tenant ID/,
    );
    expect(() => validateIdentityConfig({ ...valid, clientId: ' ' })).toThrow(/client ID/);
    expect(() => validateIdentityConfig({ ...valid, scopes: [] })).toThrow(/scopes/);
    expect(() => validateIdentityConfig({ ...valid, authority: 'localhost:8443' })).toThrow();
  });
});
