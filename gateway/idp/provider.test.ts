import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { request, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPersonas } from './personas';
import { startIdentityProvider, type RunningIdentityProvider } from './provider';
import { scriptedSignIn } from './scripted-browser';

const AUDIENCE = 'api://clearance-gateway';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function call(url: string, options: RequestOptions & { form?: Record<string, string> } = {}): Promise<Answer> {
  const { form, ...rest } = options;
  const body = form ? new URLSearchParams(form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body ? 'POST' : 'GET',
        ...rest,
        headers: { ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...rest.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A loopback listener standing in for the app's redirect URI. */
async function startLoopback(): Promise<{ server: Server; redirectUri: string }> {
  const server = createServer((_req, res) => res.end('received'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { server, redirectUri: `http://127.0.0.1:${address.port}/` };
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(idp: RunningIdentityProvider, params: Record<string, string>): string {
  const url = new URL(`${idp.issuer}/auth`);
  const all = {
    client_id: idp.clientId,
    response_type: 'code',
    scope: `openid profile offline_access ${idp.scopes.join(' ')}`,
    state: 'state-1',
    prompt: 'login',
    ...params,
  };
  for (const [key, value] of Object.entries(all)) url.searchParams.set(key, value);
  return url.href;
}

interface TokenResponse {
  readonly access_token?: string;
  readonly id_token?: string;
  readonly refresh_token?: string;
  readonly error?: string;
  readonly error_description?: string;
}

async function token(idp: RunningIdentityProvider, form: Record<string, string>): Promise<TokenResponse> {
  const answer = await call(`${idp.issuer}/token`, { ca: idp.caCertPem, form: { client_id: idp.clientId, ...form } });
  return JSON.parse(answer.body) as TokenResponse;
}

async function signInWithCode(idp: RunningIdentityProvider, redirectUri: string, persona: string) {
  const { verifier, challenge } = pkce();
  const result = await scriptedSignIn(
    authorizeUrl(idp, { redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }),
    { caCertPem: idp.caCertPem, choice: { persona } },
  );
  const callback = new URL(result.url);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code: ${result.url}`);
  expect(callback.searchParams.get('state')).toBe('state-1');
  return token(idp, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
}

describe('development identity provider', () => {
  let stateDir: string;
  let idp: RunningIdentityProvider;
  let loopback: { server: Server; redirectUri: string };
  const logs: string[] = [];

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'clearance-idp-'));
    idp = await startIdentityProvider({ stateDir, gatewayAudience: AUDIENCE, log: (line) => logs.push(line) });
    loopback = await startLoopback();
  });

  afterAll(async () => {
    loopback.server.close();
    await idp.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('serves discovery over https on localhost, trusted only through its own CA', async () => {
    expect(idp.issuer).toMatch(/^https:\/\/localhost:\d+$/);
    const answer = await call(`${idp.issuer}/.well-known/openid-configuration`, { ca: idp.caCertPem });
    expect(answer.status).toBe(200);
    const discovery = JSON.parse(answer.body) as Record<string, unknown>;
    expect(discovery.issuer).toBe(idp.issuer);
    expect(discovery.jwks_uri).toBe(idp.jwksUri);
    expect(discovery.code_challenge_methods_supported).toEqual(['S256']);

    await expect(call(`${idp.issuer}/.well-known/openid-configuration`, { ca: [...rootCertificates] })).rejects.toThrow(
      /self.signed|unable to verify|certificate/i,
    );
  });

  it('signs a persona in with code and PKCE and issues a signed JWT access token for the gateway with their groups', async () => {
    const tokens = await signInWithCode(idp, loopback.redirectUri, 'us-researcher');
    expect(tokens.error).toBeUndefined();
    const jwks = JSON.parse((await call(idp.jwksUri, { ca: idp.caCertPem })).body) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token ?? '', createLocalJWKSet(jwks), {
      issuer: idp.issuer,
      audience: AUDIENCE,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      sub: 'us-researcher',
      client_id: 'clearance-desktop',
      name: 'Avery Stone',
      preferred_username: 'avery@lab.example',
      groups: ['research', 'us-persons'],
      scope: idp.scopes[0],
    });
    expect(decodeJwt(tokens.id_token ?? '')).toMatchObject({
      aud: 'clearance-desktop',
      name: 'Avery Stone',
      preferred_username: 'avery@lab.example',
      groups: ['research', 'us-persons'],
    });
    expect(tokens.refresh_token).toBeTruthy();
  });

  it('renews with the refresh token and rotates it, so the old one no longer works', async () => {
    const first = await signInWithCode(idp, loopback.redirectUri, 'fn-researcher');
    const renewed = await token(idp, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' });
    expect(renewed.error).toBeUndefined();
    expect(renewed.access_token).not.toBe(first.access_token);
    expect(decodeJwt(renewed.access_token ?? '')).toMatchObject({
      aud: AUDIENCE,
      groups: ['research'],
      name: 'Bao Nguyen',
    });
    expect(renewed.refresh_token).not.toBe(first.refresh_token);

    const replayed = await token(idp, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' });
    expect(replayed.error).toBe('invalid_grant');
  });

  it('puts the authentication contexts of a claims request in the access token, and asks for the person for a step-up context', async () => {
    const first = await signInWithCode(idp, loopback.redirectUri, 'pending');
    const claims = (acr: string) => JSON.stringify({ access_token: { acrs: { essential: true, value: acr } } });
    const c1 = await token(idp, {
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token ?? '',
      claims: claims('c1'),
    });
    expect(decodeJwt(c1.access_token ?? '').acrs).toEqual(['c1']);
    const c2 = await token(idp, {
      grant_type: 'refresh_token',
      refresh_token: c1.refresh_token ?? '',
      claims: claims('c2'),
    });
    expect(c2.error).toBe('interaction_required');
  });

  it('refuses an authorization request without PKCE or with the plain method', async () => {
    const attempts: Record<string, string>[] = [{}, { code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' }];
    for (const params of attempts) {
      const answer = await call(authorizeUrl(idp, { redirect_uri: loopback.redirectUri, ...params }), {
        ca: idp.caCertPem,
      });
      expect(answer.status).toBe(303);
      const location = new URL(String(answer.headers.location));
      expect(location.origin).toBe(new URL(loopback.redirectUri).origin);
      expect(location.searchParams.get('error')).toBe('invalid_request');
    }
  });

  it('accepts loopback redirect URIs on any port and refuses any other redirect', async () => {
    const { challenge } = pkce();
    const attempt = (redirectUri: string) =>
      call(authorizeUrl(idp, { redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }), {
        ca: idp.caCertPem,
      });
    for (const allowed of ['http://127.0.0.1:5173/', 'http://localhost:61234', 'http://127.0.0.1:1/']) {
      const answer = await attempt(allowed);
      expect(answer.status, allowed).toBe(303);
      expect(String(answer.headers.location), allowed).toMatch(/^\/interaction\//);
    }
    for (const refused of ['http://evil.example:5173/', 'https://127.0.0.1:5173/', 'http://127.0.0.1:5173/other']) {
      const answer = await attempt(refused);
      expect(answer.status, refused).toBe(400);
      expect(answer.body, refused).toContain('redirect_uri');
      expect(answer.headers.location, refused).toBeUndefined();
    }
  });

  it('lists every persona as a button whose text begins with their name, on a page without scripts or outside assets', async () => {
    const { challenge } = pkce();
    const start = await call(
      authorizeUrl(idp, {
        redirect_uri: loopback.redirectUri,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
      { ca: idp.caCertPem },
    );
    const cookies = ([] as string[]).concat(start.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]);
    const page = await call(new URL(String(start.headers.location), idp.issuer).href, {
      ca: idp.caCertPem,
      headers: { cookie: cookies.join('; ') },
    });
    expect(page.status).toBe(200);
    const buttons = [...page.body.matchAll(/<button class="persona"[^>]*value="([^"]+)">([\s\S]*?)<\/button>/g)];
    expect(buttons.map((b) => b[1])).toEqual(demoPersonas.map((p) => p.id));
    for (const [index, persona] of demoPersonas.entries()) {
      const text = (buttons[index]?.[2] ?? '')
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim();
      expect(text.startsWith(persona.name)).toBe(true);
      expect(text).toContain(persona.username);
    }
    expect(page.body).toMatch(/<a href="\/interaction\/[^"]+\/abort">Cancel/);
    expect(page.body).not.toMatch(/<script|https?:\/\/(?!localhost)/);
    expect(String(page.headers['content-security-policy'])).toContain("default-src 'none'");
    expect(page.body).toContain('<html lang="en">');
  });

  it('sends access_denied to the app when the person cancels on the login page', async () => {
    const { challenge } = pkce();
    const result = await scriptedSignIn(
      authorizeUrl(idp, {
        redirect_uri: loopback.redirectUri,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
      { caCertPem: idp.caCertPem, choice: { cancel: true } },
    );
    const callback = new URL(result.url);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('code')).toBeNull();
  });

  it('keeps the login page up with an explanation when an unknown persona is posted', async () => {
    const { challenge } = pkce();
    const start = await call(
      authorizeUrl(idp, {
        redirect_uri: loopback.redirectUri,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
      { ca: idp.caCertPem },
    );
    const cookie = ([] as string[])
      .concat(start.headers['set-cookie'] ?? [])
      .map((c) => c.split(';')[0])
      .join('; ');
    const interaction = new URL(String(start.headers.location), idp.issuer).href;
    const answer = await call(`${interaction}/login`, {
      ca: idp.caCertPem,
      headers: { cookie },
      form: { persona: 'mallory' },
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('<p class="error" role="alert">Choose one of the people listed.</p>');
    expect(answer.body).toContain('value="us-researcher"');
    expect(answer.headers.location).toBeUndefined();
  });

  it('refuses to offer a persona the page does not list, in the scripted browser too', async () => {
    const { challenge } = pkce();
    await expect(
      scriptedSignIn(
        authorizeUrl(idp, {
          redirect_uri: loopback.redirectUri,
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }),
        { caCertPem: idp.caCertPem, choice: { persona: 'mallory' } },
      ),
    ).rejects.toThrow('does not offer persona "mallory"');
  });

  it('keeps its CA, signing key, port and refresh tokens across a restart', async () => {
    const restartDir = await mkdtemp(join(tmpdir(), 'clearance-idp-restart-'));
    try {
      const first = await startIdentityProvider({ stateDir: restartDir, gatewayAudience: AUDIENCE });
      const tokens = await signInWithCode(first, loopback.redirectUri, 'contractor');
      const kid = JSON.parse((await call(first.jwksUri, { ca: first.caCertPem })).body) as JSONWebKeySet;
      await first.close();
      expect(await readFile(join(restartDir, 'tls.key.pem'), 'utf8')).toContain('PRIVATE KEY');

      const second = await startIdentityProvider({ stateDir: restartDir, gatewayAudience: AUDIENCE });
      try {
        expect(second.issuer).toBe(first.issuer);
        expect(second.caCertPem).toBe(first.caCertPem);
        const jwks = JSON.parse((await call(second.jwksUri, { ca: second.caCertPem })).body) as JSONWebKeySet;
        expect(jwks.keys.map((k) => k.kid)).toEqual(kid.keys.map((k) => k.kid));
        const renewed = await token(second, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' });
        expect(renewed.error).toBeUndefined();
        expect(decodeJwt(renewed.access_token ?? '')).toMatchObject({ sub: 'contractor', groups: ['contractors'] });
      } finally {
        await second.close();
      }
    } finally {
      await rm(restartDir, { recursive: true, force: true });
    }
  });

  it('logs sign-ins and token grants', () => {
    expect(logs).toContain('idp: signed in as Avery Stone (us-researcher)');
    expect(logs.some((line) => line === 'idp: issued tokens (refresh_token)')).toBe(true);
  });
});
