import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';
import { ENTITLEMENTS_TYP } from '../../shared/entitlements';
import type { ClientEventName } from '../../shared/protocol';

/**
 * Test fixtures for the entitlement service: signing keys, documents, and a loopback gateway.
 *
 * The loopback gateway is this module's edge only (JWKS, the document, an SSE stream); the real
 * gateway lives in `gateway/` and is exercised end to end by the e2e suite.
 */

/** A key pair the tests sign documents with. */
export interface TestSigner {
  readonly kid: string;
  readonly alg: 'ES256' | 'EdDSA';
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Makes a signing key whose public half is published with `kid`, `alg` and `use`. */
export async function makeSigner(alg: 'ES256' | 'EdDSA', kid: string): Promise<TestSigner> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey: pair.privateKey, publicJwk };
}

/** Signs any claims (valid or not) as a compact JWS; the header defaults to a proper entitlement header. */
export async function signClaims(
  signer: TestSigner,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: signer.alg, typ: ENTITLEMENTS_TYP, kid: signer.kid, ...header })
    .sign(signer.privateKey);
}

/** The issuer the fixtures use. */
export const TEST_ISSUER = 'https://gateway.test';

/** Claims of a valid document for `sub` bound to `jkt`, valid from `nowSeconds - 10` for ten minutes. */
export function documentClaims(
  options: { sub: string; jkt: string; ver: number; nowSeconds: number },
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    iss: TEST_ISSUER,
    aud: 'clearance-desktop',
    sub: options.sub,
    iat: options.nowSeconds - 10,
    exp: options.nowSeconds + 600,
    ver: options.ver,
    cnf: { jkt: options.jkt },
    device: { id: 'device-1', assurance: 'software', compliant: true },
    models: [
      {
        id: 'mythos-5',
        name: 'Mythos 5',
        status: 'denied',
        reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        title: 'Restricted by export-control directive',
        message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
        policy: 'ec-2026-06-us-persons',
        since: '2026-06-18T00:00:00Z',
        remediation: { label: 'Request US-person verification', url: 'https://access.lab.example/us-person' },
      },
      { id: 'haiku-4', name: 'Haiku 4', status: 'allowed' },
      { id: 'internal-eval', name: 'Internal Eval', status: 'hidden', reason: 'NOT_ENTITLED' },
    ],
    ...overrides,
  };
}

/** What the loopback gateway answers on `/v1/entitlements`. */
export type DocumentResponder = () => { status: number; body: string; type?: string };

/** One request the loopback gateway saw. */
export interface SeenRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
}

/**
 * A loopback HTTP server standing in for the gateway's JWKS, entitlements and events endpoints.
 */
export class TestGateway {
  jwks: JSONWebKeySet = { keys: [] };
  document: DocumentResponder = () => ({ status: 404, body: '' });
  /** When true, `/v1/events` answers 503 (the stream is down while the rest works). */
  refuseStreams = false;
  /** When set, each stream starts with `retry: <ms>`. */
  retryMs: number | undefined;
  readonly requests: SeenRequest[] = [];
  private readonly streams = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private nextEventId = 1;

  private constructor(private port: number) {}

  /** Starts a gateway on a free loopback port. */
  static async start(): Promise<TestGateway> {
    const gateway = new TestGateway(0);
    await gateway.listen();
    return gateway;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The authorized fetch the service is given: the same gateway, with a stand-in DPoP header. */
  readonly fetch = (path: string, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    headers.set('Authorization', 'DPoP test-token');
    return fetch(`${this.url}${path}`, { ...init, headers });
  };

  /** Requests to `path` so far. */
  seen(path: string): SeenRequest[] {
    return this.requests.filter((request) => request.path === path);
  }

  /** Number of event streams open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Sends one event to every open stream and returns its id. */
  push(event: ClientEventName, data: unknown): string {
    const id = String(this.nextEventId++);
    for (const stream of this.streams) stream.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    return id;
  }

  /** Ends every open stream (the gateway restarting its event hub). */
  dropStreams(): void {
    for (const stream of this.streams) stream.destroy();
    this.streams.clear();
  }

  /** Ends every open stream cleanly, as the gateway does when a stream's access token expires. */
  endStreams(): void {
    for (const stream of this.streams) stream.end(': access token expired; reconnect\n\n');
    this.streams.clear();
  }

  /** Stops listening and cuts every connection: the gateway is down. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.streams.clear();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port: the gateway is back. */
  async restart(): Promise<void> {
    await this.listen();
  }

  private async listen(): Promise<void> {
    const server = createServer((request, response) => this.handle(request, response));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const path = new URL(request.url ?? '/', this.url).pathname;
    this.requests.push({ path, headers: request.headers });
    if (path === '/.well-known/jwks.json') {
      response.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(this.jwks));
    } else if (path === '/v1/entitlements') {
      const answer = this.document();
      response
        .writeHead(answer.status, { 'content-type': answer.type ?? 'application/entitlements+jwt' })
        .end(answer.body);
    } else if (path === '/v1/events') {
      if (this.refuseStreams) {
        response
          .writeHead(503, { 'content-type': 'application/problem+json' })
          .end(JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503 }));
        return;
      }
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      response.write(`${this.retryMs !== undefined ? `retry: ${this.retryMs}\n` : ''}: connected\n\n`);
      this.streams.add(response);
      response.on('close', () => this.streams.delete(response));
    } else {
      response.writeHead(404).end();
    }
  }
}
