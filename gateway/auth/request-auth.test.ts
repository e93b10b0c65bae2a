import { createHmac, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWK } from 'jose';
import { ProblemDetails } from '../../shared/problem';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { GatewayTestClient, SseReader, TestDevice } from '../testing/device-client';

let harness: GatewayHarness;
let client: GatewayTestClient;
beforeAll(async () => {
  harness = await startGatewayHarness();
  client = await harness.signIn(testPersonas.usResearcher);
});
afterAll(async () => {
  await harness?.close();
});

async function expectUnauthorized(response: Response, error: string, detail: RegExp): Promise<void> {
  expect(response.status).toBe(401);
  const problem = ProblemDetails.parse(await response.json());
  expect(problem.error?.code).toBe(error);
  expect(problem.detail).toMatch(detail);
  expect(response.headers.get('www-authenticate')).toMatch(new RegExp(`^DPoP error="${error}"`));
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const entitlementsUrl = () => `${harness.gateway.url}/v1/entitlements`;

/** Re-signs the client's token with the gateway's real session key after changing it. */
async function forgeWithSessionKey(change: {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
}): Promise<string> {
  const token = client.accessToken!;
  const jwk = JSON.parse(
    readFileSync(join(harness.stateDir, 'gateway', 'keys', 'session-token.private.jwk.json'), 'utf8'),
  ) as JWK;
  const header = { ...decodeProtectedHeader(token), ...change.header } as { alg: string };
  return new SignJWT({ ...decodeJwt(token), ...change.claims })
    .setProtectedHeader(header)
    .sign(await importJWK(jwk, 'ES256'));
}

describe('DPoP-bound gateway requests', () => {
  it('accepts a fresh proof bound to the token and the device key', async () => {
    const response = await client.request('GET', '/v1/entitlements');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/jwt');
  });

  it('rejects a replayed proof', async () => {
    const token = client.accessToken!;
    const proof = await client.device.proof('GET', entitlementsUrl(), { accessToken: token });
    const send = () => fetch(entitlementsUrl(), { headers: { authorization: `DPoP ${token}`, dpop: proof } });
    expect((await send()).status).toBe(200);
    await expectUnauthorized(await send(), 'invalid_dpop_proof', /replay/);
  });

  it('rejects a proof made for another URL', async () => {
    const response = await client.request('GET', '/v1/entitlements', {
      proof: { claims: { htu: `${harness.gateway.url}/v1/models` } },
    });
    await expectUnauthorized(response, 'invalid_dpop_proof', /htu/);
  });

  it('rejects a proof made for another method', async () => {
    const response = await client.request('GET', '/v1/entitlements', { proof: { claims: { htm: 'POST' } } });
    await expectUnauthorized(response, 'invalid_dpop_proof', /for POST, not GET/);
  });

  it('rejects a proof whose ath does not hash the presented token', async () => {
    const response = await client.request('GET', '/v1/entitlements', { proof: { claims: { ath: 'A'.repeat(43) } } });
    await expectUnauthorized(response, 'invalid_dpop_proof', /ath/);
  });

  it('rejects a proof signed by another key than the one in its header', async () => {
    const other = await TestDevice.create();
    const response = await client.request('GET', '/v1/entitlements', { proof: { signingKey: other.privateKey } });
    await expectUnauthorized(response, 'invalid_dpop_proof', /signature/);
  });

  it('rejects a token presented from a different device key than its cnf.jkt', async () => {
    const thief = await harness.signIn(testPersonas.fnResearcher);
    const response = await thief.request('GET', '/v1/entitlements', { token: client.accessToken! });
    await expectUnauthorized(response, 'invalid_token', /cnf\.jkt/);
  });

  it('rejects the DPoP-bound token used as a Bearer token', async () => {
    const response = await fetch(entitlementsUrl(), { headers: { authorization: `Bearer ${client.accessToken}` } });
    await expectUnauthorized(response, 'invalid_token', /DPoP-bound/);
  });

  it('rejects a request without a DPoP proof', async () => {
    const response = await fetch(entitlementsUrl(), { headers: { authorization: `DPoP ${client.accessToken}` } });
    await expectUnauthorized(response, 'invalid_dpop_proof', /missing DPoP proof/);
  });

  it('rejects a proof with the wrong typ', async () => {
    const response = await client.request('GET', '/v1/entitlements', { proof: { header: { typ: 'JWT' } } });
    await expectUnauthorized(response, 'invalid_dpop_proof', /typ/);
  });

  it('rejects a proof that carries the private key', async () => {
    const jwk = { ...client.device.publicJwk, d: 'AAAA' };
    const response = await client.request('GET', '/v1/entitlements', { proof: { header: { jwk } } });
    await expectUnauthorized(response, 'invalid_dpop_proof', /private/);
  });

  it('rejects a stale proof', async () => {
    const iat = Math.floor(Date.now() / 1000) - 600;
    const response = await client.request('GET', '/v1/entitlements', { proof: { claims: { iat } } });
    await expectUnauthorized(response, 'invalid_dpop_proof', /too old/);
  });
});

describe('gateway access tokens', () => {
  const present = async (token: string) =>
    fetch(entitlementsUrl(), {
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await client.device.proof('GET', entitlementsUrl(), { accessToken: token }),
      },
    });

  it('rejects alg none', async () => {
    const payload = client.accessToken!.split('.')[1];
    const token = `${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.`;
    await expectUnauthorized(
      await present(token),
      'invalid_token',
      /^Access token rejected: algorithm not allowed \("alg" \(Algorithm\) Header Parameter value not allowed\)$/,
    );
  });

  it('rejects HS256 signed with the gateway public key as the secret', async () => {
    const jwks = (await (await fetch(`${harness.gateway.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    const kid = decodeProtectedHeader(client.accessToken!).kid;
    const publicJwk = jwks.keys.find((k) => k.kid === kid)!;
    const pem = createPublicKey({ key: publicJwk as never, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const header = b64({ alg: 'HS256', typ: 'at+jwt', kid });
    const payload = client.accessToken!.split('.')[1];
    const signature = createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url');
    await expectUnauthorized(
      await present(`${header}.${payload}.${signature}`),
      'invalid_token',
      /algorithm not allowed/,
    );
  });

  it('rejects a token for another audience', async () => {
    await expectUnauthorized(
      await present(await forgeWithSessionKey({ claims: { aud: 'https://other.example' } })),
      'invalid_token',
      /"aud"/,
    );
  });

  it('rejects a token from another issuer', async () => {
    await expectUnauthorized(
      await present(await forgeWithSessionKey({ claims: { iss: 'https://other.example' } })),
      'invalid_token',
      /"iss"/,
    );
  });

  it('rejects an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectUnauthorized(
      await present(await forgeWithSessionKey({ claims: { iat: now - 900, exp: now - 600 } })),
      'invalid_token',
      /expired/,
    );
  });

  it('rejects a token issued in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectUnauthorized(
      await present(await forgeWithSessionKey({ claims: { iat: now + 120, exp: now + 420 } })),
      'invalid_token',
      /"iat"/,
    );
  });

  it('rejects a token without typ', async () => {
    await expectUnauthorized(
      await present(await forgeWithSessionKey({ header: { typ: undefined } })),
      'invalid_token',
      /"typ"/,
    );
  });

  it('rejects an entitlement document presented as an access token', async () => {
    const { jws } = await client.entitlements();
    await expectUnauthorized(
      await present(jws),
      'invalid_token',
      /^Access token rejected: token kid is not the gateway session key$/,
    );
  });
});

describe('server nonces', () => {
  it('asks for a nonce with use_dpop_nonce and accepts the retried proof', async () => {
    const strict = await startGatewayHarness({ dpop: { requireNonce: true } });
    try {
      const device = await TestDevice.create();
      const idpToken = await strict.idp.mint(testPersonas.usResearcher);
      const challenge = await fetch(`${strict.gateway.url}/v1/device/challenge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${idpToken}` },
      });
      const { nonce: attestationNonce } = (await challenge.json()) as { nonce: string };
      const url = `${strict.gateway.url}/v1/session`;
      const body = JSON.stringify({ posture: await device.posture(attestationNonce) });
      const headers = { authorization: `Bearer ${idpToken}`, 'content-type': 'application/json' };
      const first = await fetch(url, {
        method: 'POST',
        headers: { ...headers, dpop: await device.proof('POST', url) },
        body,
      });
      expect(first.status).toBe(401);
      expect(ProblemDetails.parse(await first.json()).error?.code).toBe('use_dpop_nonce');
      const nonce = first.headers.get('dpop-nonce');
      expect(nonce).toBeTruthy();
      const second = await fetch(url, {
        method: 'POST',
        headers: { ...headers, dpop: await device.proof('POST', url, { nonce: nonce! }) },
        body,
      });
      expect(second.status).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('device revocation', () => {
  it('ends the device event stream with session.revoked and refuses its token afterwards', async () => {
    const victim = await harness.signIn(testPersonas.pending);
    const events = await victim.request('GET', '/v1/events');
    const reader = new SseReader(events);
    expect((await reader.next())?.event).toBe('entitlements.changed');
    const response = await fetch(`${harness.gateway.url}/v1/admin/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${harness.gateway.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'pending', jkt: victim.device.jkt }),
    });
    expect(await response.json()).toEqual({ revoked: [victim.device.jkt] });
    const revoked = await reader.next();
    expect(revoked?.event).toBe('session.revoked');
    await reader.finished();
    await expectUnauthorized(await victim.request('GET', '/v1/models'), 'invalid_token', /revoked/);
    await expect(victim.signIn(await harness.idp.mint(testPersonas.pending))).rejects.toThrow(/403.*revoked/);
  });
});
