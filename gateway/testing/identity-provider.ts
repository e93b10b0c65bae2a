import { createServer, type Server } from 'node:https';
import { generate } from 'selfsigned';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** A demo persona as the test identity provider mints tokens for it (mirrors gateway/idp/personas.ts). */
export interface TestPersona {
  readonly id: string;
  readonly name: string;
  readonly username: string;
  readonly groups: readonly string[];
}

/** The four demo personas the gateway's documents are specified for. */
export const testPersonas = {
  usResearcher: {
    id: 'us-researcher',
    name: 'Avery Park',
    username: 'avery@clearance.example',
    groups: ['research', 'us-persons'],
  },
  fnResearcher: { id: 'fn-researcher', name: 'Mina Okafor', username: 'mina@clearance.example', groups: ['research'] },
  pending: {
    id: 'pending',
    name: 'Jordan Reyes',
    username: 'jordan@clearance.example',
    groups: ['research', 'us-person-verification-pending'],
  },
  contractor: { id: 'contractor', name: 'Sam Lindqvist', username: 'sam@contractor.example', groups: ['contractors'] },
} as const satisfies Record<string, TestPersona>;

/** Changes to a minted token, for negative tests. */
export interface MintOverrides {
  readonly header?: Record<string, unknown>;
  readonly claims?: JWTPayload;
  /** Claims to leave out entirely. */
  readonly omit?: readonly string[];
  readonly lifetimeSeconds?: number;
  /** Sign with this key instead of the provider's. */
  readonly key?: CryptoKey;
}

/** A running test identity provider. */
export interface TestIdentityProvider {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string;
  /** The self-signed certificate the JWKS is served with; the gateway trusts it via `caCertPem`. */
  readonly caCertPem: string;
  readonly publicJwk: JWK;
  /** Number of JWKS requests served. */
  readonly jwksFetches: () => number;
  mint(persona: TestPersona, overrides?: MintOverrides): Promise<string>;
  close(): Promise<void>;
}

/** Audience of identity-provider access tokens for the gateway. */
export const GATEWAY_AUDIENCE = 'api://clearance-gateway';

/**
 * A stand-in identity provider for gateway tests: an ES256 key whose JWKS is served over
 * https on loopback with a fresh self-signed certificate, and a minter for access tokens
 * shaped like the development provider's (`typ: at+jwt`, `groups`, `preferred_username`).
 */
export async function startTestIdentityProvider(audience = GATEWAY_AUDIENCE): Promise<TestIdentityProvider> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'test-idp-1', alg: 'ES256', use: 'sig' };
  const tls = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  let fetches = 0;
  const server: Server = createServer({ key: tls.private, cert: tls.cert }, (request, response) => {
    if (request.url === '/jwks') {
      fetches++;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const issuer = `https://localhost:${port}`;
  return {
    issuer,
    jwksUri: `https://localhost:${port}/jwks`,
    audience,
    caCertPem: tls.cert,
    publicJwk,
    jwksFetches: () => fetches,
    async mint(persona, overrides = {}) {
      const now = Math.floor(Date.now() / 1000);
      const claims: JWTPayload = {
        iss: issuer,
        sub: persona.id,
        aud: audience,
        iat: now,
        exp: now + (overrides.lifetimeSeconds ?? 3600),
        jti: `${persona.id}-${now}-${Math.random().toString(36).slice(2)}`,
        scope: 'openid profile offline_access',
        client_id: 'clearance-desktop',
        name: persona.name,
        preferred_username: persona.username,
        groups: [...persona.groups],
        ...overrides.claims,
      };
      for (const name of overrides.omit ?? []) delete claims[name];
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: publicJwk.kid, ...overrides.header })
        .sign(overrides.key ?? privateKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
