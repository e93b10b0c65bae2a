import { createHash, generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import type { JWK } from 'jose';
import { Pool } from 'undici';
import { GatewayTestClient, TestDevice } from '../../gateway/testing/device-client';
import type { TestIdentityProvider, TestPersona } from '../../gateway/testing/identity-provider';

/** A signed-in desktop client as the benchmark drives it: its session token and device key. */
export interface BenchSession {
  readonly userId: string;
  readonly token: string;
  /** `ath`: the token's SHA-256, computed once. */
  readonly ath: string;
  readonly jwk: JWK;
  readonly key: KeyObject;
}

/** A persona of the research group (US person), one per benchmark user. */
export function benchPersona(index: number): TestPersona {
  return {
    id: `bench-${index}`,
    name: `Bench User ${index}`,
    username: `bench-${index}@clearance.example`,
    groups: ['research', 'us-persons'],
  };
}

/**
 * Signs `count` users in, each on its own fresh device key (challenge, posture, session), with
 * `width` sign-ins at a time. `sessionUrl` is where the calls go; proofs name `publicUrl`.
 */
export async function signInMany(
  idp: TestIdentityProvider,
  sessionUrl: string,
  publicUrl: string,
  count: number,
  width = 16,
): Promise<BenchSession[]> {
  const sessions: BenchSession[] = [];
  for (let start = 0; start < count; start += width) {
    const batch = Array.from({ length: Math.min(width, count - start) }, async (_, offset) => {
      const persona = benchPersona(start + offset);
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
      const device = await TestDevice.withSigner(
        { kty, crv, x, y },
        async (input) => sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
        'software',
      );
      const client = new GatewayTestClient(sessionUrl, device);
      const idpToken = await idp.mint(persona);
      const nonce = await client.challenge(idpToken);
      const url = `${publicUrl}/v1/session`;
      const response = await fetch(`${sessionUrl}/v1/session`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${idpToken}`,
          dpop: await device.proof('POST', url),
          'content-type': 'application/json',
        },
        body: JSON.stringify({ posture: await device.posture(nonce) }),
      });
      const { accessToken } = await client.acceptSession(response);
      return {
        userId: persona.id,
        token: accessToken,
        ath: createHash('sha256').update(accessToken).digest('base64url'),
        jwk: device.publicJwk,
        key: privateKey,
      };
    });
    sessions.push(...(await Promise.all(batch)));
  }
  return sessions;
}

/** A fresh DPoP proof (new `jti`, current `iat`), signed with node:crypto to keep the load generator light. */
export function proofFor(session: BenchSession, method: string, htu: string): string {
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'dpop+jwt', jwk: session.jwk })).toString('base64url');
  const claims = Buffer.from(
    JSON.stringify({ jti: randomUUID(), htm: method, htu, iat: Math.floor(Date.now() / 1000), ath: session.ath }),
  ).toString('base64url');
  const input = `${header}.${claims}`;
  const signature = sign('sha256', Buffer.from(input), { key: session.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** The non-streamed chat request every measured call sends. */
export const CHAT_BODY = JSON.stringify({
  model: 'bench-echo',
  max_tokens: 8,
  messages: [{ role: 'user', content: 'Say ok.' }],
});

/** The request the gateway itself sends the upstream for `CHAT_BODY` (what "direct" measures). */
export const UPSTREAM_BODY = JSON.stringify({
  model: 'bench',
  max_tokens: 8,
  messages: [{ role: 'user', content: 'Say ok.' }],
  stream: true,
  stream_options: { include_usage: true },
});

/** One authenticated chat call through a gateway; resolves with its status once the body is read. */
export async function gatewayCall(
  pool: Pool,
  session: BenchSession,
  publicUrl: string,
  proof = proofFor(session, 'POST', `${publicUrl}/v1/chat/completions`),
): Promise<number> {
  const response = await pool.request({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: {
      authorization: `DPoP ${session.token}`,
      dpop: proof,
      'content-type': 'application/json',
    },
    body: CHAT_BODY,
  });
  await response.body.text();
  return response.statusCode;
}

/** The same call straight to the upstream; resolves with its status once the body is read. */
export async function directCall(pool: Pool): Promise<number> {
  const response = await pool.request({
    method: 'POST',
    path: '/chat/completions',
    headers: { 'content-type': 'application/json' },
    body: UPSTREAM_BODY,
  });
  await response.body.text();
  return response.statusCode;
}

/** A keep-alive connection pool to one origin. */
export function poolFor(url: string, connections: number): Pool {
  return new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
}

/** The `q` quantile (0–1) of `values`, by nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
