import { createHmac, createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from 'jose';
import { ProblemDetails } from '../../shared/problem';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas, type MintOverrides } from '../testing/identity-provider';
import { IdentityTokenVerifier, DEFAULT_CLAIM_MAPPING } from './identity-token';

let harness: GatewayHarness;
beforeAll(async () => {
  harness = await startGatewayHarness();
});
afterAll(async () => {
  await harness?.close();
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function challengeWith(
  token: string,
): Promise<{ status: number; problem: ProblemDetails; challenge: string | null }> {
  const response = await fetch(`${harness.gateway.url}/v1/device/challenge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: response.status,
    problem: ProblemDetails.parse(await response.json()),
    challenge: response.headers.get('www-authenticate'),
  };
}

async function expectRejected(token: string, detail: RegExp): Promise<void> {
  const { status, problem, challenge } = await challengeWith(token);
  expect(status).toBe(401);
  expect(problem.error?.code).toBe('invalid_token');
  expect(problem.detail).toMatch(detail);
  expect(challenge).toMatch(/^Bearer error="invalid_token"/);
}

const mint = (overrides: MintOverrides = {}) => harness.idp.mint(testPersonas.usResearcher, overrides);

describe('identity-provider access tokens', () => {
  it('accepts a well-formed token and issues a one-time nonce', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/device/challenge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await mint()}` },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { nonce: string; expires_in: number };
    expect(body.nonce.length).toBeGreaterThanOrEqual(43);
    expect(body.expires_in).toBeGreaterThan(0);
  });

  it('rejects alg none', async () => {
    const good = await mint();
    const payload = good.split('.')[1];
    await expectRejected(
      `${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.`,
      /^Identity token rejected: algorithm not allowed \("alg" \(Algorithm\) Header Parameter value not allowed\)$/,
    );
  });

  it('rejects HS256 signed with the provider public key as the secret', async () => {
    const pem = createPublicKey({ key: harness.idp.publicJwk as never, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const good = await mint();
    const payload = good.split('.')[1];
    const header = b64({ alg: 'HS256', typ: 'at+jwt', kid: harness.idp.publicJwk.kid });
    const signature = createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url');
    await expectRejected(`${header}.${payload}.${signature}`, /algorithm not allowed/);
  });

  it('rejects a token for another audience', async () => {
    await expectRejected(await mint({ claims: { aud: 'api://someone-else' } }), /claim "aud"/);
  });

  it('rejects a token from another issuer', async () => {
    await expectRejected(await mint({ claims: { iss: 'https://evil.example' } }), /claim "iss"/);
  });

  it('rejects an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRejected(await mint({ claims: { iat: now - 7200, exp: now - 3600 } }), /expired/);
  });

  it('rejects a token issued in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRejected(await mint({ claims: { iat: now + 600, exp: now + 4200 } }), /"iat"/);
  });

  it('rejects a token without typ', async () => {
    await expectRejected(await mint({ header: { typ: undefined } }), /"typ"/);
  });

  it('rejects a token of another type', async () => {
    await expectRejected(await mint({ header: { typ: 'JWT' } }), /"typ"/);
  });

  it('rejects a token without iat', async () => {
    await expectRejected(await mint({ omit: ['iat'] }), /"iat"/);
  });

  it('rejects a token signed by a key outside the provider JWKS', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    await expectRejected(await mint({ key: privateKey }), /^Identity token rejected: signature does not verify$/);
  });

  it('rejects a request without a token', async () => {
    const response = await fetch(`${harness.gateway.url}/v1/device/challenge`, { method: 'POST' });
    expect(response.status).toBe(401);
    expect(ProblemDetails.parse(await response.json()).error?.code).toBe('invalid_request');
  });
});

describe('production (Entra) mode', () => {
  it('derives issuer and JWKS from the tenant and refuses HMAC algorithms in OIDC mode', () => {
    const verifier = new IdentityTokenVerifier(
      { kind: 'entra', tenantId: '11111111-2222-3333-4444-555555555555', audience: 'api://clearance-gateway' },
      { ...DEFAULT_CLAIM_MAPPING, subjectClaim: 'oid' },
    );
    expect(verifier.expectedIssuer).toBe('https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0');
    expect(
      () =>
        new IdentityTokenVerifier(
          { issuer: 'https://idp', jwksUri: 'https://idp/jwks', audience: 'a', algorithms: ['HS256'] },
          DEFAULT_CLAIM_MAPPING,
        ),
    ).toThrow(/not allowed/);
  });
});
