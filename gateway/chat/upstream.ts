import type { CatalogModel } from '../catalog';

/** One chat message as the gateway passes it on (text only). */
export interface CompletionMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** A completion request after access has been decided. */
export interface UpstreamRequest {
  readonly model: CatalogModel;
  readonly messages: readonly CompletionMessage[];
  readonly maxTokens?: number;
  readonly temperature?: number;
}

/** Why a completion ended, in OpenAI's terms. */
export type FinishReason = 'stop' | 'length' | 'content_filter';

/** What an upstream yields while it streams. */
export type UpstreamEvent =
  { readonly type: 'delta'; readonly text: string } | { readonly type: 'finish'; readonly reason: FinishReason };

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
  /** Between two pieces of the streamed body. */
  readonly idleMs: number;
}

/** Default upstream time limits. */
export const DEFAULT_UPSTREAM_TIMEOUTS: UpstreamTimeouts = { responseMs: 30_000, idleMs: 60_000 };

/**
 * An upstream failure: 502 when the upstream answered badly or not at all, 504 when it was too slow.
 */
export class UpstreamError extends Error {
  constructor(
    readonly status: 502 | 504,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'UpstreamError';
  }
}

/** Turns a fetch failure into an `UpstreamError`, telling a timeout from a refused connection. */
export function upstreamFetchError(what: string, error: unknown, timedOut: boolean): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (timedOut) return new UpstreamError(504, `${what} did not answer in time`);
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const reason = cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
  return new UpstreamError(502, `${what} could not be reached (${reason})`);
}

/**
 * POSTs JSON and waits for response headers within `responseMs`, honouring `signal`.
 *
 * Non-2xx answers become `UpstreamError(502)` carrying the upstream's status and message.
 */
export async function postJson(
  what: string,
  url: string,
  headers: Readonly<Record<string, string>>,
  body: unknown,
  timeouts: UpstreamTimeouts,
  signal: AbortSignal,
): Promise<Response> {
  const timer = new AbortController();
  let timedOut = false;
  const timeout = setTimeout(() => {
    timedOut = true;
    timer.abort();
  }, timeouts.responseMs);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream, application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, timer.signal]),
    });
  } catch (error) {
    if (signal.aborted) throw error;
    throw upstreamFetchError(what, error, timedOut);
  } finally {
    clearTimeout(timeout);
  }
  if (!response.ok) {
    const text = (await response.text().catch(() => '')).slice(0, 2000);
    let message = text.trim();
    try {
      const json = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
      message = typeof json.error === 'string' ? json.error : (json.error?.message ?? json.message ?? message);
    } catch {
      // not JSON: keep the text
    }
    throw new UpstreamError(502, `${what} answered HTTP ${response.status}${message ? `: ${message}` : ''}`);
  }
  if (!response.body) throw new UpstreamError(502, `${what} sent an empty response`);
  return response;
}
