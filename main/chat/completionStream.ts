import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { IpcError, TokenUsage } from '../../shared/ipc';
import { errorFromProblem, type GatewayError } from './gatewayErrors';

/** How a completion stream ended when the connection itself did not fail. */
export type CompletionEnd =
  { readonly status: 'complete'; readonly usage?: TokenUsage } | ({ readonly status: 'error' } & GatewayError);

/** OpenAI's `usage` object as a `TokenUsage`, or undefined when it is not one. */
export function usageFrom(value: unknown): TokenUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: total,
  } = value as Record<string, unknown>;
  const count = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0;
  if (!count(prompt) || !count(completion) || !count(total)) return undefined;
  return { promptTokens: prompt as number, completionTokens: completion as number, totalTokens: total as number };
}

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
  const state: { done: boolean; finished: boolean; failure: GatewayError | undefined; usage: TokenUsage | undefined } =
    {
      done: false,
      finished: false,
      failure: undefined,
      usage: undefined,
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
    const chunk = parseJson(event.data) as
      { error?: unknown; choices?: readonly ChunkChoice[]; usage?: unknown } | undefined;
    if (!chunk || typeof chunk !== 'object') return;
    if (chunk.error !== undefined && chunk.error !== null) {
      state.failure = errorFromProblem(typeof chunk.error === 'object' ? chunk.error : { message: chunk.error });
      state.done = true;
      return;
    }
    state.usage = usageFrom(chunk.usage) ?? state.usage;
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
  if (state.finished) return state.usage ? { status: 'complete', usage: state.usage } : { status: 'complete' };
  return { status: 'error', error: ENDED_EARLY };
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
