import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import type { CatalogModel } from '../catalog';

/** One chat message as an OpenAI client sent it (validated; passed on as it is to OpenAI-compatible upstreams). */
export type ChatMessage = Readonly<Record<string, unknown>> & { readonly role: string };

/** One chat message reduced to text, for upstreams that are not OpenAI-compatible. */
export interface CompletionMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** A completion request after access has been decided and its parameters checked against the model. */
export interface UpstreamRequest {
  readonly model: CatalogModel;
  readonly messages: readonly ChatMessage[];
  /**
   * The OpenAI request parameters besides `model`, `messages`, `stream` and `stream_options`,
   * only those the model honours (see `parameters.ts`).
   */
  readonly params: Readonly<Record<string, unknown>>;
}

/** Token counts of one completion, in OpenAI's terms. */
export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  readonly [detail: string]: unknown;
}

/** Why a choice ended, in OpenAI's terms. */
export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'function_call';

/** One choice of an OpenAI `chat.completion.chunk`: what one event adds to choice `index`. */
export interface ChunkChoice {
  readonly index: number;
  readonly delta: Readonly<Record<string, unknown>>;
  readonly finish_reason: FinishReason | null;
  readonly logprobs?: unknown;
}

/** What an upstream yields while it streams: pieces of choices, and the usage once at the end. */
export type UpstreamEvent =
  | { readonly type: 'choices'; readonly choices: readonly ChunkChoice[] }
  | { readonly type: 'usage'; readonly usage: Usage };

/**
 * A source of completions. Implementations stop promptly when `signal` aborts and throw
 * `UpstreamError` for every failure, so the gateway never hangs on one.
 */
export interface Upstream {
  stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent>;
}

/** Time limits for a remote upstream. */
export interface UpstreamTimeouts {
  /** Until the response headers arrive. */
  readonly responseMs: number;
  /** Between two pieces of the streamed body (while the gateway is waiting for one). */
  readonly idleMs: number;
}

/** Default upstream time limits. */
export const DEFAULT_UPSTREAM_TIMEOUTS: UpstreamTimeouts = { responseMs: 30_000, idleMs: 60_000 };

/** Default cap on one upstream event and on one line of an upstream event stream: 1 MiB. */
export const DEFAULT_MAX_UPSTREAM_EVENT_BYTES = 1024 * 1024;

/** How the gateway talks to remote upstreams. */
export interface UpstreamTransport {
  readonly timeouts: UpstreamTimeouts;
  /** Largest event, and largest line, an upstream may send; beyond it the completion fails with 502. */
  readonly maxEventBytes: number;
  /** The keep-alive connection pool every upstream call goes through. */
  readonly dispatcher: Dispatcher;
}

/** A keep-alive connection pool for upstream calls; close it when the gateway stops. */
export function createUpstreamDispatcher(): Agent {
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 300_000, connections: 256 });
}

/**
 * An upstream failure: 502 when the upstream answered badly or not at all, 504 when it was too slow.
 *
 * `detail` is what the caller is told; `logDetail` (the upstream's own words, which can hold
 * anything) goes only to the gateway's log.
 */
export class UpstreamError extends Error {
  constructor(
    readonly status: 502 | 504,
    readonly detail: string,
    readonly logDetail: string = detail,
  ) {
    super(detail);
    this.name = 'UpstreamError';
  }
}

/** Turns a request failure into an `UpstreamError`, telling a timeout from a refused connection. */
export function upstreamFetchError(what: string, error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError
  ) {
    return new UpstreamError(504, `${what} did not answer in time`);
  }
  const failure = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const reason = failure?.code ?? failure?.cause?.code ?? failure?.message ?? String(error);
  return new UpstreamError(502, `${what} could not be reached (${reason})`);
}

/** An upstream's streamed answer: the body, to be read with `readServerSentEvents`. */
export interface UpstreamStream {
  readonly body: Dispatcher.ResponseData['body'];
}

/**
 * POSTs JSON asking for an event stream through the keep-alive pool; waits for the response
 * headers within `timeouts.responseMs`, honouring `signal`.
 *
 * A non-2xx answer, or a 200 that is not `text/event-stream`, is an `UpstreamError(502)`; the
 * upstream's own message goes to `logDetail` only.
 */
export async function postForEventStream(
  what: string,
  url: string,
  headers: Readonly<Record<string, string>>,
  body: unknown,
  transport: UpstreamTransport,
  signal: AbortSignal,
): Promise<UpstreamStream> {
  let response: Dispatcher.ResponseData;
  try {
    const { origin, path } = targetOf(url);
    response = await transport.dispatcher.request({
      origin,
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
      body: JSON.stringify(body),
      signal,
      headersTimeout: transport.timeouts.responseMs,
      // The SSE reader keeps its own idle timer, paused while the client is slow to read.
      bodyTimeout: 0,
    });
  } catch (error) {
    if (signal.aborted) throw error;
    throw upstreamFetchError(what, error);
  }
  if (response.statusCode < 200 || response.statusCode > 299) {
    const text = await readCapped(response.body, 16 * 1024);
    let message = text.trim();
    try {
      const json = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
      message = typeof json.error === 'string' ? json.error : (json.error?.message ?? json.message ?? message);
    } catch {
      // not JSON: keep the text
    }
    throw new UpstreamError(
      502,
      `${what} refused the request (HTTP ${response.statusCode}); its message is in the gateway's log`,
      `${what} answered HTTP ${response.statusCode}${message ? `: ${message.slice(0, 2000)}` : ''}`,
    );
  }
  const type = String(response.headers['content-type'] ?? '');
  if (!type.toLowerCase().startsWith('text/event-stream')) {
    const text = await readCapped(response.body, 2048);
    throw new UpstreamError(
      502,
      `${what} answered a streaming request with ${type || 'no content type'} instead of an event stream`,
      `${what} answered HTTP ${response.statusCode} ${type || '(no content type)'}: ${text.slice(0, 500)}`,
    );
  }
  return { body: response.body };
}

/** Each upstream URL's origin and path, parsed once (undici's `request(url)` parses it on every call). */
const targets = new Map<string, { readonly origin: string; readonly path: string }>();

function targetOf(url: string): { readonly origin: string; readonly path: string } {
  let target = targets.get(url);
  if (!target) {
    const parsed = new URL(url);
    target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    if (targets.size >= 1000) targets.clear();
    targets.set(url, target);
  }
  return target;
}

async function readCapped(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // what arrived is enough for the log
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
