import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { generate } from 'selfsigned';
import { errors, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type FetchImplementation, type JWK } from 'jose';
import { AuthError } from './errors';
import {
  DEFAULT_CLAIM_MAPPING,
  describeJoseError,
  fetchTrustingCa,
  IdentityTokenVerifier,
  type ClaimMapping,
  type IdentityProviderSettings,
} from './identity-token';

const ISSUER = 'https://idp.example';
const AUDIENCE = 'api://clearance-gateway';
const TENANT = '11111111-2222-3333-4444-555555555555';
const ENTRA_MAPPING: ClaimMapping = { ...DEFAULT_CLAIM_MAPPING, subjectClaim: 'oid' };
/** A whole second plus 999 ms: `now` is rounded down. */
const NOW = 1_800_000_000;

interface Signer {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function signer(alg: string, kid: string): Promise<Signer> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid } };
}

let es256: Signer;
let es384: Signer;
let eddsa: Signer;
let rsa: Signer;
let pss: Signer;
let outsider: Signer;
beforeAll(async () => {
  [es256, es384, eddsa, rsa, pss, outsider] = await Promise.all([
    signer('ES256', 'es'),
    signer('ES384', 'es384'),
    signer('EdDSA', 'ed'),
    signer('RS256', 'rs'),
    signer('PS256', 'ps'),
    signer('ES256', 'es'),
  ]);
});

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
});
beforeEach(() => {
  vi.setSystemTime(NOW * 1000 + 999);
});
afterAll(() => vi.useRealTimers());

/** The JWKS requests a verifier made, answered from memory. */
function jwksFetch(keys: () => JWK[] = () => [es256, es384, eddsa, rsa, pss].map((s) => s.publicJwk)) {
  const urls: string[] = [];
  const fetch: FetchImplementation = async (url) => {
    urls.push(url);
    return Response.json({ keys: keys() });
  };
  return { urls, fetch };
}

function oidc(
  change: Partial<Extract<IdentityProviderSettings, { kind?: 'oidc' }>> = {},
  mapping = DEFAULT_CLAIM_MAPPING,
) {
  const jwks = jwksFetch();
  const verifier = new IdentityTokenVerifier(
    { issuer: ISSUER, jwksUri: `${ISSUER}/jwks`, audience: AUDIENCE, fetch: jwks.fetch, ...change },
    mapping,
  );
  return { verifier, urls: jwks.urls };
}

function entra(change: Partial<Extract<IdentityProviderSettings, { kind: 'entra' }>> = {}) {
  const jwks = jwksFetch();
  const verifier = new IdentityTokenVerifier(
    { kind: 'entra', tenantId: TENANT, audience: AUDIENCE, fetch: jwks.fetch, ...change },
    ENTRA_MAPPING,
  );
  return { verifier, urls: jwks.urls };
}

const baseClaims = (): Record<string, unknown> => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: 'alice',
  iat: NOW,
  exp: NOW + 600,
  name: 'Alice Doe',
  preferred_username: 'alice@example',
  groups: ['research', 'us-persons'],
});

async function token(
  claims: Record<string, unknown> = {},
  options: { header?: Record<string, unknown>; by?: Signer; omit?: string[] } = {},
): Promise<string> {
  const by = options.by ?? es256;
  const payload = { ...baseClaims(), ...claims };
  for (const name of options.omit ?? []) delete payload[name];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: by.alg, typ: 'at+jwt', kid: by.kid, ...options.header })
    .sign(by.privateKey);
}

const entraClaims = (change: Record<string, unknown> = {}) => ({
  iss: `https://login.microsoftonline.com/${TENANT}/v2.0`,
  tid: TENANT,
  ver: '2.0',
  oid: 'object-id-of-alice',
  sub: 'pairwise-sub',
  ...change,
});

async function refused(verifier: IdentityTokenVerifier, jwt: string, detail: string): Promise<void> {
  const error = await verifier.verify(jwt).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AuthError);
  const { error: code, scheme, status } = error as AuthError;
  expect({ code, detail: (error as AuthError).detail, scheme, status }).toStrictEqual({
    code: 'invalid_token',
    detail,
    scheme: 'Bearer',
    status: 401,
  });
}

describe('DEFAULT_CLAIM_MAPPING', () => {
  it("names the development provider's claims and the groups that decide US-person status", () => {
    expect(DEFAULT_CLAIM_MAPPING).toStrictEqual({
      groupsClaim: 'groups',
      usPersonGroup: 'us-persons',
      verificationPendingGroup: 'us-person-verification-pending',
      subjectClaim: 'sub',
      usernameClaim: 'preferred_username',
    });
  });
});

describe('IdentityTokenVerifier (OIDC)', () => {
  it('maps a valid token to the identity, fetching the configured JWKS', async () => {
    const { verifier, urls } = oidc();
    expect(verifier.expectedIssuer).toBe(ISSUER);
    expect(await verifier.verify(await token({ client_id: 'clearance-desktop', azp: 'other' }))).toStrictEqual({
      userId: 'alice',
      name: 'Alice Doe',
      username: 'alice@example',
      groups: ['research', 'us-persons'],
      clientId: 'clearance-desktop',
      expiresAt: NOW + 600,
    });
    expect(urls).toStrictEqual([`${ISSUER}/jwks`]);
  });

  it('accepts each default algorithm: ES256, EdDSA, RS256, PS256', async () => {
    const { verifier } = oidc();
    for (const [by, alg] of [
      [es256, 'ES256'],
      [eddsa, 'EdDSA'],
      [rsa, 'RS256'],
      [pss, 'PS256'],
    ] as const) {
      const jwt = await token({}, { by: { ...by, alg } });
      await expect(verifier.verify(jwt)).resolves.toMatchObject({ userId: 'alice' });
    }
  });

  it('refuses an algorithm outside the list (ES384), even with a matching key in the JWKS', async () => {
    await refused(
      oidc().verifier,
      await token({}, { by: es384 }),
      'Identity token rejected: algorithm not allowed ("alg" (Algorithm) Header Parameter value not allowed)',
    );
  });

  it('takes the configured algorithms instead of the defaults', async () => {
    const { verifier } = oidc({ algorithms: ['RS256'] });
    await expect(verifier.verify(await token({}, { by: rsa }))).resolves.toMatchObject({ userId: 'alice' });
    await refused(
      verifier,
      await token(),
      'Identity token rejected: algorithm not allowed ("alg" (Algorithm) Header Parameter value not allowed)',
    );
  });

  it('refuses to be configured with "none" or an HMAC algorithm', () => {
    for (const alg of ['none', 'HS256', 'HS512']) {
      expect(() => oidc({ algorithms: ['ES256', alg] })).toThrow(
        new Error(`Identity token algorithm ${alg} is not allowed`),
      );
    }
    expect(() => oidc({ algorithms: ['PS512', 'RS384'] })).not.toThrow();
  });

  it('refuses alg none', async () => {
    const [header, payload] = (await token()).split('.');
    expect(header).toBeDefined();
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`;
    await refused(
      oidc().verifier,
      none,
      'Identity token rejected: algorithm not allowed ("alg" (Algorithm) Header Parameter value not allowed)',
    );
  });

  it('refuses a token signed by a key outside the JWKS, or whose kid the JWKS does not hold', async () => {
    const { verifier } = oidc();
    await refused(verifier, await token({}, { by: outsider }), 'Identity token rejected: signature does not verify');
    await refused(
      verifier,
      await token({}, { header: { kid: 'unknown' } }),
      'Identity token rejected: no key in the JWKS matches the token (kid/alg)',
    );
  });

  it('refuses another issuer and another audience', async () => {
    const { verifier } = oidc();
    await refused(
      verifier,
      await token({ iss: 'https://evil.example' }),
      'Identity token rejected: unexpected "iss" claim value (claim "iss")',
    );
    await refused(
      verifier,
      await token({ aud: 'api://someone-else' }),
      'Identity token rejected: unexpected "aud" claim value (claim "aud")',
    );
  });

  it('accepts any of several audiences, as configured (a later change to the list does not reach it)', async () => {
    const audiences = ['api://one', AUDIENCE];
    const { verifier } = oidc({ audience: audiences });
    audiences.length = 0;
    await expect(verifier.verify(await token({ aud: 'api://one' }))).resolves.toMatchObject({ userId: 'alice' });
    await expect(verifier.verify(await token())).resolves.toMatchObject({ userId: 'alice' });
  });

  it('requires iss, aud, exp, iat and sub', async () => {
    const { verifier } = oidc();
    for (const claim of ['iss', 'aud', 'exp', 'iat', 'sub']) {
      await refused(
        verifier,
        await token({}, { omit: [claim] }),
        `Identity token rejected: missing required "${claim}" claim (claim "${claim}")`,
      );
    }
  });

  it('refuses an expired token, with 30 s of leeway', async () => {
    const { verifier } = oidc();
    await expect(verifier.verify(await token({ iat: NOW - 700, exp: NOW - 29 }))).resolves.toBeDefined();
    await refused(
      verifier,
      await token({ iat: NOW - 700, exp: NOW - 30 }),
      'Identity token rejected: token expired ("exp" claim timestamp check failed)',
    );
  });

  it('refuses a token issued more than 30 s in the future', async () => {
    const { verifier } = oidc();
    await expect(verifier.verify(await token({ iat: NOW + 30 }))).resolves.toBeDefined();
    await refused(verifier, await token({ iat: NOW + 31 }), 'Identity token rejected: "iat" is in the future');
  });

  it('refuses a non-numeric iat', async () => {
    await refused(
      oidc().verifier,
      await token({ iat: String(NOW) }),
      'Identity token rejected: "iat" claim must be a number (claim "iat")',
    );
  });

  it('requires typ at+jwt by default', async () => {
    const { verifier } = oidc();
    for (const typ of ['JWT', undefined]) {
      await refused(
        verifier,
        await token({}, { header: { typ } }),
        'Identity token rejected: unexpected "typ" JWT header value (claim "typ")',
      );
    }
  });

  it('requires the configured typ, or none at all with tokenType null', async () => {
    const custom = oidc({ tokenType: 'JWT' }).verifier;
    await expect(custom.verify(await token({}, { header: { typ: 'JWT' } }))).resolves.toBeDefined();
    await refused(custom, await token(), 'Identity token rejected: unexpected "typ" JWT header value (claim "typ")');
    const none = oidc({ tokenType: null }).verifier;
    await expect(none.verify(await token({}, { header: { typ: undefined } }))).resolves.toBeDefined();
    await expect(none.verify(await token({}, { header: { typ: 'anything' } }))).resolves.toBeDefined();
  });

  it('refuses a token whose groups did not fit (groups overage)', async () => {
    const { verifier } = oidc();
    await refused(
      verifier,
      await token({ _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph' } } }),
      'Identity token has too many groups to list (groups overage); assign only the relevant groups to the app',
    );
    await expect(verifier.verify(await token({ _claim_names: { roles: 'src1' } }))).resolves.toBeDefined();
  });

  it('refuses a token without a usable subject', async () => {
    const { verifier } = oidc();
    await refused(verifier, await token({ sub: '' }), 'Identity token has no "sub" claim');
    const byEmail = oidc({}, { ...DEFAULT_CLAIM_MAPPING, subjectClaim: 'email' }).verifier;
    await refused(byEmail, await token({ email: 42 }), 'Identity token has no "email" claim');
    await expect(byEmail.verify(await token({ email: 'alice@example' }))).resolves.toMatchObject({
      userId: 'alice@example',
    });
  });

  it('refuses groups that are not a list of strings, and reads no groups as none', async () => {
    const { verifier } = oidc();
    for (const groups of ['research', ['research', 7], [null]]) {
      await refused(verifier, await token({ groups }), `Identity token's "groups" is not a list of strings`);
    }
    expect((await verifier.verify(await token({}, { omit: ['groups'] }))).groups).toStrictEqual([]);
    const roles = oidc({}, { ...DEFAULT_CLAIM_MAPPING, groupsClaim: 'roles' }).verifier;
    await refused(roles, await token({ roles: 'admin' }), `Identity token's "roles" is not a list of strings`);
    expect((await roles.verify(await token({ roles: ['admin'] }))).groups).toStrictEqual(['admin']);
  });

  it('leaves out a name, username or client that is absent, empty or not a string', async () => {
    const { verifier } = oidc();
    expect(await verifier.verify(await token({}, { omit: ['name', 'preferred_username'] }))).toStrictEqual({
      userId: 'alice',
      groups: ['research', 'us-persons'],
      expiresAt: NOW + 600,
    });
    expect(await verifier.verify(await token({ name: '', preferred_username: 7, client_id: 7, azp: 8 }))).toStrictEqual(
      { userId: 'alice', groups: ['research', 'us-persons'], expiresAt: NOW + 600 },
    );
    expect(await verifier.verify(await token({ name: 7, client_id: 7, azp: 'desktop' }))).toStrictEqual({
      userId: 'alice',
      username: 'alice@example',
      groups: ['research', 'us-persons'],
      clientId: 'desktop',
      expiresAt: NOW + 600,
    });
    expect((await verifier.verify(await token({ preferred_username: '' }))).username).toBe('');
    const byEmail = oidc({}, { ...DEFAULT_CLAIM_MAPPING, usernameClaim: 'email' }).verifier;
    expect((await byEmail.verify(await token({ email: 'a@example' }))).username).toBe('a@example');
  });

  it('reports a JWKS that cannot be fetched', async () => {
    const verifier = new IdentityTokenVerifier(
      {
        issuer: ISSUER,
        jwksUri: `${ISSUER}/jwks`,
        audience: AUDIENCE,
        fetch: () => Promise.reject(new Error('connect ECONNREFUSED')),
      },
      DEFAULT_CLAIM_MAPPING,
    );
    await refused(verifier, await token(), 'Identity token rejected: connect ECONNREFUSED');
  });
});

describe('IdentityTokenVerifier (Entra)', () => {
  it('derives issuer and JWKS from the tenant, RS256 only, typ JWT, the user from oid', async () => {
    const { verifier, urls } = entra();
    expect(verifier.expectedIssuer).toBe(`https://login.microsoftonline.com/${TENANT}/v2.0`);
    const jwt = await token(entraClaims({ azp: 'desktop-app' }), { by: rsa, header: { typ: 'JWT' } });
    expect(await verifier.verify(jwt)).toStrictEqual({
      userId: 'object-id-of-alice',
      name: 'Alice Doe',
      username: 'alice@example',
      groups: ['research', 'us-persons'],
      clientId: 'desktop-app',
      expiresAt: NOW + 600,
    });
    expect(urls).toStrictEqual([`https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys`]);
  });

  it('uses a sovereign cloud authority host, trailing slashes dropped', async () => {
    const { verifier, urls } = entra({ authorityHost: 'https://login.microsoftonline.us//' });
    expect(verifier.expectedIssuer).toBe(`https://login.microsoftonline.us/${TENANT}/v2.0`);
    const jwt = await token(entraClaims({ iss: `https://login.microsoftonline.us/${TENANT}/v2.0` }), {
      by: rsa,
      header: { typ: 'JWT' },
    });
    await expect(verifier.verify(jwt)).resolves.toMatchObject({ userId: 'object-id-of-alice' });
    expect(urls).toStrictEqual([`https://login.microsoftonline.us/${TENANT}/discovery/v2.0/keys`]);
  });

  it('refuses other algorithms and types than RS256 JWT', async () => {
    const { verifier } = entra();
    await refused(
      verifier,
      await token(entraClaims(), { header: { typ: 'JWT' } }),
      'Identity token rejected: algorithm not allowed ("alg" (Algorithm) Header Parameter value not allowed)',
    );
    await refused(
      verifier,
      await token(entraClaims(), { by: rsa }),
      'Identity token rejected: unexpected "typ" JWT header value (claim "typ")',
    );
  });

  it('refuses a token from another tenant, or not a v2.0 access token', async () => {
    const { verifier } = entra();
    const sign = (change: Record<string, unknown>) => token(entraClaims(change), { by: rsa, header: { typ: 'JWT' } });
    await refused(verifier, await sign({ tid: 'another-tenant' }), 'Identity token is from another tenant');
    await refused(verifier, await sign({ tid: undefined }), 'Identity token is from another tenant');
    await refused(verifier, await sign({ ver: '1.0' }), 'Identity token is not a v2.0 access token');
    await refused(verifier, await sign({ ver: undefined }), 'Identity token is not a v2.0 access token');
    await refused(verifier, await sign({ oid: undefined }), 'Identity token has no "oid" claim');
  });
});

describe('describeJoseError', () => {
  it('names the failed check of each jose error, and never more than its message', () => {
    expect(describeJoseError(new errors.JWTClaimValidationFailed('unexpected "aud" claim value', {}, 'aud'))).toBe(
      'unexpected "aud" claim value (claim "aud")',
    );
    expect(describeJoseError(new errors.JWTExpired('"exp" claim timestamp check failed', {}, 'exp'))).toBe(
      'token expired ("exp" claim timestamp check failed)',
    );
    expect(describeJoseError(new errors.JOSEAlgNotAllowed('alg X not allowed'))).toBe(
      'algorithm not allowed (alg X not allowed)',
    );
    expect(describeJoseError(new errors.JWKSNoMatchingKey())).toBe('no key in the JWKS matches the token (kid/alg)');
    expect(describeJoseError(new errors.JWSSignatureVerificationFailed())).toBe('signature does not verify');
    expect(describeJoseError(new errors.JWSInvalid('Invalid Compact JWS'))).toBe('Invalid Compact JWS');
    expect(describeJoseError(new TypeError('bad input'))).toBe('bad input');
    expect(describeJoseError('a string')).toBe('a string');
    expect(describeJoseError(undefined)).toBe('undefined');
  });
});

describe('fetchTrustingCa', () => {
  type Handler = (request: IncomingMessage, response: ServerResponse) => void;
  let handler: Handler;
  const seen: { method?: string; headers: IncomingMessage['headers']; url?: string }[] = [];
  const serve: Handler = (request, response) => {
    seen.push({ method: request.method, headers: request.headers, url: request.url });
    handler(request, response);
  };
  let http: Server;
  let https: Server;
  let ca: string;
  let otherCa: string;
  const listen = (server: Server) =>
    new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
  let httpUrl: string;
  let httpsUrl: string;

  beforeAll(async () => {
    vi.useRealTimers();
    const certificate = () =>
      generate([{ name: 'commonName', value: 'localhost' }], {
        keyType: 'ec',
        curve: 'P-256',
        algorithm: 'sha256',
        extensions: [
          { name: 'basicConstraints', cA: true },
          { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] },
        ],
      });
    const [tls, other] = await Promise.all([certificate(), certificate()]);
    ca = tls.cert;
    otherCa = other.cert;
    http = createHttpServer(serve);
    https = createHttpsServer({ key: tls.private, cert: tls.cert }, serve);
    httpUrl = `http://localhost:${await listen(http)}/jwks`;
    httpsUrl = `https://localhost:${await listen(https)}/jwks`;
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterAll(async () => {
    for (const server of [http, https]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
  afterEach(() => {
    seen.length = 0;
  });

  const options = (change: { method?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}) =>
    ({
      method: change.method ?? 'GET',
      headers: new Headers(change.headers ?? { accept: 'application/json' }),
      redirect: 'manual',
      signal: change.signal ?? new AbortController().signal,
    }) as Parameters<FetchImplementation>[1];

  it('fetches over https trusting the given CA, passing method and headers, returning status, headers and body', async () => {
    handler = (_request, response) => {
      response.setHeader('set-cookie', ['a=1', 'b=2']);
      response.writeHead(203, { 'content-type': 'application/json', 'x-one': 'one' });
      response.write('{"keys":');
      response.end('[]}');
    };
    const response = await fetchTrustingCa(ca)(
      httpsUrl,
      options({ method: 'POST', headers: { accept: 'application/json', 'x-probe': 'yes' } }),
    );
    expect(response.status).toBe(203);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-one')).toBe('one');
    expect(response.headers.has('set-cookie')).toBe(false);
    expect(await response.text()).toBe('{"keys":[]}');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/jwks',
      headers: { accept: 'application/json', 'x-probe': 'yes' },
    });
  });

  it('keeps certificate verification: a server with a certificate from another CA is refused', async () => {
    handler = (_request, response) => response.end('{}');
    await expect(fetchTrustingCa(otherCa)(httpsUrl, options())).rejects.toMatchObject({
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
    expect(seen).toStrictEqual([]);
  });

  it('fetches over plain http too', async () => {
    handler = (_request, response) => response.writeHead(404).end('not here');
    const response = await fetchTrustingCa(ca)(httpUrl, options());
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('not here');
    expect(seen).toHaveLength(1);
  });

  it('fails when the connection fails', async () => {
    await expect(fetchTrustingCa(ca)('http://127.0.0.1:1/jwks', options())).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it('fails when the response breaks off', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-length': '100' });
      response.write('{"keys":', () => response.destroy());
    };
    await expect(fetchTrustingCa(ca)(httpUrl, options())).rejects.toMatchObject({
      message: 'aborted',
      code: 'ECONNRESET',
    });
  });

  it('is aborted by the signal (jose times the JWKS request out with it)', async () => {
    handler = () => {};
    const controller = new AbortController();
    const pending = fetchTrustingCa(ca)(httpUrl, options({ signal: controller.signal }));
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('is what the verifier fetches the JWKS with when given a CA and no fetch', async () => {
    handler = (_request, response) =>
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [es256.publicJwk] }));
    const verifier = new IdentityTokenVerifier(
      { issuer: ISSUER, jwksUri: httpsUrl, audience: AUDIENCE, caCertPem: ca },
      DEFAULT_CLAIM_MAPPING,
    );
    await expect(verifier.verify(await token())).resolves.toMatchObject({ userId: 'alice' });
    expect(seen).toHaveLength(1);
  });
});
