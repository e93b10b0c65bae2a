import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { request } from 'node:https';
import { scriptedSignIn } from '../idp/scripted-browser';

/** What a sign-in against the development provider needs. */
export interface DevProviderClient {
  readonly idpUrl: string;
  readonly caCertPem: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
}

function httpsText(url: string, caCertPem: string, body?: URLSearchParams): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body ? 'POST' : 'GET',
        ca: caCertPem,
        headers: body ? { 'content-type': 'application/x-www-form-urlencoded' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body?.toString());
  });
}

/**
 * Signs a persona in on the development identity provider the way the desktop app does
 * (authorization code + PKCE, loopback redirect) and returns the access token for the gateway.
 */
export async function signInWithDevProvider(client: DevProviderClient, personaId: string): Promise<string> {
  const metadata = JSON.parse(
    (await httpsText(`${client.idpUrl}/.well-known/openid-configuration`, client.caCertPem)).text,
  ) as { authorization_endpoint: string; token_endpoint: string };
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  let deliver: (params: URLSearchParams) => void = () => {};
  const delivered = new Promise<URLSearchParams>((resolve) => (deliver = resolve));
  const loopback = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const query = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams;
      deliver(req.method === 'POST' ? new URLSearchParams(Buffer.concat(chunks).toString('utf8')) : query);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('signed in');
    });
  });
  await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', resolve));
  try {
    const redirectUri = `http://127.0.0.1:${(loopback.address() as { port: number }).port}/`;
    const authorize = new URL(metadata.authorization_endpoint);
    authorize.search = new URLSearchParams({
      client_id: client.clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: ['openid', 'profile', 'offline_access', ...client.scopes].join(' '),
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
      prompt: 'consent',
    }).toString();
    await scriptedSignIn(authorize.href, { caCertPem: client.caCertPem, choice: { persona: personaId } });
    const params = await delivered;
    const code = params.get('code');
    if (!code || params.get('state') !== state) throw new Error(`sign-in did not return a code: ${params.toString()}`);
    const token = await httpsText(
      metadata.token_endpoint,
      client.caCertPem,
      new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        client_id: client.clientId,
        code_verifier: verifier,
      }),
    );
    const body = JSON.parse(token.text) as { access_token?: string; error?: string; error_description?: string };
    if (!body.access_token) throw new Error(`token request failed: ${token.status} ${token.text}`);
    return body.access_token;
  } finally {
    loopback.closeAllConnections();
    loopback.close();
  }
}
