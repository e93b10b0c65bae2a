import { describe, expect, it } from 'vitest';
import { parseClaimsChallenge, parseWwwAuthenticate } from './claims-challenge';

const claims = { access_token: { nbf: { essential: true, value: '1604106651' } } };
const encoded = Buffer.from(JSON.stringify(claims)).toString('base64');

describe('parseWwwAuthenticate', () => {
  it('reads several challenges with quoted and unquoted params', () => {
    expect(parseWwwAuthenticate('Bearer realm="api", error=invalid_token, DPoP algs="ES256 EdDSA"')).toEqual([
      { scheme: 'Bearer', params: { realm: 'api', error: 'invalid_token' } },
      { scheme: 'DPoP', params: { algs: 'ES256 EdDSA' } },
    ]);
  });

  it('unescapes quoted strings and lower-cases param names', () => {
    expect(parseWwwAuthenticate('Bearer Realm="a \\"quoted\\" realm, with comma"')).toEqual([
      { scheme: 'Bearer', params: { realm: 'a "quoted" realm, with comma' } },
    ]);
  });

  it('skips a token68 credential after the scheme', () => {
    expect(parseWwwAuthenticate('Negotiate abc123==, Bearer error="insufficient_claims"')).toEqual([
      { scheme: 'Negotiate', params: {} },
      { scheme: 'Bearer', params: { error: 'insufficient_claims' } },
    ]);
  });
});

describe('parseClaimsChallenge', () => {
  it('decodes the claims of an Entra-style insufficient_claims challenge', () => {
    const header = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="${encoded}"`;
    expect(parseClaimsChallenge(header)).toEqual({ scheme: 'Bearer', claims: JSON.stringify(claims) });
  });

  it('finds the claims challenge among other challenges', () => {
    const header = `DPoP algs="ES256", Bearer error="insufficient_claims", claims="${encoded}"`;
    expect(parseClaimsChallenge(header)?.scheme).toBe('Bearer');
  });

  it('accepts base64url claims without padding', () => {
    const url = Buffer.from(JSON.stringify(claims)).toString('base64url');
    expect(parseClaimsChallenge(`Bearer error="insufficient_claims", claims="${url}"`)?.claims).toBe(
      JSON.stringify(claims),
    );
  });

  it('ignores other errors, missing claims, and claims that are not base64 of a JSON object', () => {
    expect(parseClaimsChallenge(`Bearer error="invalid_token", claims="${encoded}"`)).toBeUndefined();
    expect(parseClaimsChallenge('Bearer error="insufficient_claims"')).toBeUndefined();
    expect(parseClaimsChallenge('Bearer error="insufficient_claims", claims="not base64!"')).toBeUndefined();
    const array = Buffer.from('[1,2]').toString('base64');
    expect(parseClaimsChallenge(`Bearer error="insufficient_claims", claims="${array}"`)).toBeUndefined();
    expect(parseClaimsChallenge('')).toBeUndefined();
  });
});
