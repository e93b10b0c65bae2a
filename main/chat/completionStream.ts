import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { IpcError } from '../../shared/ipc';
import { errorFromProblem, type GatewayError } from './gatewayErrors';

/** How a completion stream ended when the connection itself did not fail. */
export type CompletionEnd = { readonly status: 'complete' } | ({ readonly status: 'error' } & GatewayError);

const ENDED_EARLY: IpcError = {
  code: 'GATEWAY_UNAVAILABLE',
  message: 'The gateway ended the reply before it was finished. The part received was kept.',
};

interface ChunkChoice {
  readonly delta?: { readonly content?: unknown };
  readonly finish_reason?: unknown;
}

/**
 * Reads an OpenAI-compatible chat completion stream (SSE), calling `onDelta` with each piece of text in order.
 *
 * The stream is complete at `data: [DONE]` or a chunk with a `finish_reason`. The gateway ends a
 * stream it cuts (a policy change) with `event: error` whose data is a problem document; an
 * OpenAI-style `data: {"error": {...}}` chunk is read the same way. A stream that simply stops
 * is reported as ended early. A failing connection (or an abort) rejects instead.
 */
export async function readCompletionStream(
  body: ReadableStream<Uint8Array>,
  onDelta: (text: string) => void,
): Promise<CompletionEnd> {
  const state: { done: boolean; finished: boolean; failure: GatewayError | undefined } = {
    done: false,
    finished: false,
    failure: undefined,
  };
  const onEvent = (event: EventSourceMessage) => {
    if (state.done) return;
    if (event.event === 'error') {
      state.failure = errorFromProblem(parseJson(event.data));
      state.done = true;
      return;
    }
    if (event.data.trim() === '[DONE]') {
      state.finished = true;
      state.done = true;
      return;
    }
    const chunk = parseJson(event.data) as { error?: unknown; choices?: readonly ChunkChoice[] } | undefined;
    if (!chunk || typeof chunk !== 'object') return;
    if (chunk.error !== undefined && chunk.error !== null) {
      state.failure = errorFromProblem(typeof chunk.error === 'object' ? chunk.error : { message: chunk.error });
      state.done = true;
      return;
    }
    const choice = chunk.choices?.[0];
    const content = choice?.delta?.content;
    if (typeof content === 'string' && content.length > 0) onDelta(content);
    if (typeof choice?.finish_reason === 'string') state.finished = true;
  };
  const parser = createParser({ onEvent });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    while (!state.done) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
    if (!state.done) {
      parser.feed(decoder.decode());
      parser.reset({ consume: true });
    }
  } finally {
    if (state.done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (state.failure) return { status: 'error', ...state.failure };
  if (state.finished) return { status: 'complete' };
  return { status: 'error', error: ENDED_EARLY };
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
