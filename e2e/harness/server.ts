import { build } from 'esbuild';
import { timingSafeEqual, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { RENDERER_CSP, RENDERER_MIME_TYPES } from '../../main/electron/csp';
import { dispatchIpc } from '../../main/ipc/dispatch';
import type { ClearanceServices } from '../../main/services';

const here = fileURLToPath(new URL('.', import.meta.url));
const projectRoot = normalize(join(here, '..', '..'));

/** Options for {@link startBridgeServer}. */
export interface BridgeServerOptions {
  readonly services: ClearanceServices;
  readonly rendererDir?: string;
  readonly port?: number;
  readonly log?: (message: string, error?: unknown) => void;
}

/** A running bridge server. */
export interface BridgeServer {
  /** The page URL, with the per-run token in its fragment. */
  readonly url: string;
  readonly origin: string;
  readonly token: string;
  close(): Promise<void>;
}

let bridgeScript: Promise<string> | undefined;

/** Bundles the browser half of the bridge once per process. */
function bundleBridge(): Promise<string> {
  bridgeScript ??= build({
    entryPoints: [join(here, 'bridge-client.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    target: 'chrome120',
    minify: true,
  }).then((result) => result.outputFiles[0]!.text);
  return bridgeScript;
}

function tokensEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Serves the built renderer on loopback and answers the page's calls over an authenticated WebSocket.
 *
 * The page gets the same `window.clearance` the preload gives it in Electron; calls go through the same
 * `dispatchIpc` the Electron IPC handlers use, so both shells check payloads identically.
 */
export async function startBridgeServer(options: BridgeServerOptions): Promise<BridgeServer> {
  const rendererDir = normalize((options.rendererDir ?? join(projectRoot, 'dist', 'renderer')) + sep);
  const token = randomBytes(24).toString('base64url');
  const log = options.log ?? (() => {});
  const script = await bundleBridge();
  const sockets = new Set<WebSocket>();

  async function serveFile(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const headers = {
      'content-security-policy': RENDERER_CSP,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    };
    if (url.pathname === '/__bridge.js') {
      response.writeHead(200, { ...headers, 'content-type': RENDERER_MIME_TYPES['.js'] });
      response.end(script);
      return;
    }
    const relative = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const file = normalize(join(rendererDir, relative));
    if (!file.startsWith(rendererDir)) {
      response.writeHead(403).end('Forbidden');
      return;
    }
    try {
      let body: Buffer | string = await readFile(file);
      if (file.endsWith('index.html')) {
        // The bridge is a classic script, so it runs before the app's deferred module script.
        body = body.toString('utf8').replace('<head>', '<head>\n    <script src="./__bridge.js"></script>');
      }
      response.writeHead(200, {
        ...headers,
        'content-type': RENDERER_MIME_TYPES[extname(file)] ?? 'application/octet-stream',
      });
      response.end(body);
    } catch {
      response.writeHead(404, headers).end('Not found. Run `npm run build:renderer` first.');
    }
  }

  const server: Server = createServer((request, response) => {
    serveFile(request, response).catch((error: unknown) => {
      log('Harness failed to serve a file', error);
      response.writeHead(500).end();
    });
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 });

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  server.on('upgrade', (request, socket, head) => {
    // Only the harness page's own origin may open the bridge; the token is checked next.
    if (new URL(request.url ?? '/', origin).pathname !== '/__bridge' || request.headers.origin !== origin) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws));
  });

  const subscription = options.services.onEvent((event, payload) => {
    const message = JSON.stringify({ type: 'event', event, payload });
    for (const ws of sockets) ws.send(message);
  });

  wss.on('connection', (ws) => {
    let authenticated = false;
    const timer = setTimeout(() => authenticated || ws.close(4401, 'unauthenticated'), 3000);
    ws.on('message', (raw) => {
      let message: { type?: unknown; token?: unknown; id?: unknown; channel?: unknown; payload?: unknown };
      try {
        message = JSON.parse(String(raw)) as typeof message;
      } catch {
        ws.close(4400, 'malformed message');
        return;
      }
      if (!authenticated) {
        if (message.type === 'hello' && typeof message.token === 'string' && tokensEqual(message.token, token)) {
          authenticated = true;
          clearTimeout(timer);
          sockets.add(ws);
        } else {
          ws.close(4401, 'unauthenticated');
        }
        return;
      }
      if (message.type !== 'invoke' || typeof message.id !== 'number') return;
      const id = message.id;
      void dispatchIpc(options.services.handlers, message.channel, message.payload, log).then((result) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'result', id, result }));
      });
    });
    ws.on('close', () => {
      clearTimeout(timer);
      sockets.delete(ws);
    });
  });

  return {
    url: `${origin}/#token=${token}`,
    origin,
    token,
    async close() {
      subscription.dispose();
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
