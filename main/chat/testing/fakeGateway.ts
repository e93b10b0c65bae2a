import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DECISION_ID_HEADER } from '../../../shared/protocol';
import type { GatewayFetch } from '../ChatService';

/** A request the fake gateway received. */
export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
}

/** How the fake gateway answers one request; `closed` resolves when the client's connection goes away. */
export type Scenario = (res: ServerResponse, closed: Promise<void>, request: ReceivedRequest) => Promise<void> | void;

/** An OpenAI-style stream chunk carrying `content`. */
export function chunk(content: string, finishReason: string | null = null): string {
  const choice = { index: 0, delta: content ? { content } : {}, finish_reason: finishReason };
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [choice] })}\n\n`;
}

/** Starts an SSE response with an optional decision id header. */
export function startStream(res: ServerResponse, decisionId?: string): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    ...(decisionId ? { [DECISION_ID_HEADER]: decisionId } : {}),
  });
  res.flushHeaders();
}

/** Waits `ms` milliseconds. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A loopback HTTP server standing in for the gateway's chat endpoint in unit tests.
 *
 * Each test sets `scenario`; the server records requests and whether a response's connection
 * was closed by the client before the server finished it.
 */
export class FakeGateway {
  scenario: Scenario = (res) => {
    res.writeHead(500).end();
  };
  readonly requests: ReceivedRequest[] = [];
  /** Responses whose connection the client closed before the server ended them. */
  closedByClient = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeGateway> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const gateway = new FakeGateway(server, `http://127.0.0.1:${port}`);
    server.on('request', (req, res) => void gateway.handle(req, res));
    return gateway;
  }

  /** A {@link GatewayFetch} against this server. */
  readonly fetch: GatewayFetch = (path, init) => fetch(`${this.url}${path}`, init);

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const part of req) parts.push(part as Buffer);
    const text = Buffer.concat(parts).toString('utf8');
    const request: ReceivedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: text ? (JSON.parse(text) as unknown) : undefined,
    };
    this.requests.push(request);
    const closed = new Promise<void>((resolve) =>
      res.on('close', () => {
        if (!res.writableEnded) this.closedByClient++;
        resolve();
      }),
    );
    try {
      await this.scenario(res, closed, request);
    } catch {
      res.destroy();
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
