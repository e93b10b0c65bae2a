import { Agent, request } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import type { HttpClient } from '../platform';
import { IdentityNetworkError } from './errors';

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * MSAL's HTTP client: the app's own `HttpClient`, or, when the provider has its own CA, Node's https with that CA added.
 *
 * The development provider's CA is trusted for MSAL's requests only, on top of the public roots:
 * certificate verification is never turned off and no process-wide setting changes.
 * Failures become {@link IdentityNetworkError}s, which keep what went wrong on the wire.
 */
export function createIdentityNetworkClient(options: {
  readonly http: HttpClient;
  readonly caCertPem?: string;
}): INetworkModule & { dispose(): void } {
  const agent = options.caCertPem
    ? new Agent({ ca: [...rootCertificates, options.caCertPem], keepAlive: false })
    : undefined;
  const send = <T>(method: 'GET' | 'POST', url: string, init: NetworkRequestOptions | undefined, timeout?: number) =>
    agent
      ? sendWithAgent<T>(agent, method, url, init, timeout ?? DEFAULT_TIMEOUT_MS)
      : sendWithHttpClient<T>(options.http, method, url, init, timeout ?? DEFAULT_TIMEOUT_MS);
  return {
    sendGetRequestAsync: (url, init, timeout) => send('GET', url, init, timeout),
    sendPostRequestAsync: (url, init) => send('POST', url, init),
    dispose: () => agent?.destroy(),
  };
}

async function sendWithHttpClient<T>(
  http: HttpClient,
  method: 'GET' | 'POST',
  url: string,
  init: NetworkRequestOptions | undefined,
  timeoutMs: number,
): Promise<NetworkResponse<T>> {
  let response: Response;
  try {
    response = await http(url, {
      method,
      headers: init?.headers ?? {},
      ...(method === 'POST' ? { body: init?.body ?? '' } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw toNetworkError(url, error);
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    headers[key.toLowerCase()] = value;
  });
  return { status: response.status, headers, body: parseBody<T>(url, response.status, await response.text()) };
}

function sendWithAgent<T>(
  agent: Agent,
  method: 'GET' | 'POST',
  url: string,
  init: NetworkRequestOptions | undefined,
  timeoutMs: number,
): Promise<NetworkResponse<T>> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    if (target.protocol !== 'https:') {
      reject(
        new IdentityNetworkError(url, 'NOT_HTTPS', `Refusing to send an identity request over ${target.protocol}`),
      );
      return;
    }
    const body = method === 'POST' ? (init?.body ?? '') : undefined;
    const headers: Record<string, string> = { ...(init?.headers ?? {}) };
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const req = request(target, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new IdentityNetworkError(url, 'TOO_LARGE', 'The identity provider answered with too much data'));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => reject(toNetworkError(url, error)));
      res.on('end', () => {
        const responseHeaders: Record<string, string> = {};
        for (const [key, value] of Object.entries(res.headers)) {
          if (value !== undefined) responseHeaders[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
        }
        const status = res.statusCode ?? 0;
        try {
          resolve({
            status,
            headers: responseHeaders,
            body: parseBody<T>(url, status, Buffer.concat(chunks).toString('utf8')),
          });
        } catch (error) {
          reject(error);
        }
      });
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new IdentityNetworkError(url, 'TIMEOUT', `No answer within ${timeoutMs} ms`)),
    );
    req.on('error', (error) => reject(toNetworkError(url, error)));
    req.end(body);
  });
}

function parseBody<T>(url: string, status: number, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new IdentityNetworkError(
      url,
      'NOT_JSON',
      `The identity provider answered HTTP ${status} with something other than JSON`,
    );
  }
}

function toNetworkError(url: string, error: unknown): IdentityNetworkError {
  if (error instanceof IdentityNetworkError) return error;
  const cause = (error as { cause?: unknown })?.cause;
  const code =
    (error as NodeJS.ErrnoException)?.code ??
    (cause as NodeJS.ErrnoException | undefined)?.code ??
    ((error as Error)?.name === 'TimeoutError' ? 'TIMEOUT' : undefined);
  const message = error instanceof Error ? error.message : String(error);
  // Electron's net.fetch reports certificate failures only in the message (net::ERR_CERT_…).
  if (!code && /ERR_CERT_/.test(message)) return new IdentityNetworkError(url, 'CERT_UNTRUSTED', message);
  return new IdentityNetworkError(url, code, `Request to ${new URL(url).host} failed: ${message}`);
}
