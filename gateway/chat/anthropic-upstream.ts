import { readServerSentEvents } from './sse-reader';
import {
  postJson,
  UpstreamError,
  type CompletionMessage,
  type FinishReason,
  type Upstream,
  type UpstreamEvent,
  type UpstreamRequest,
  type UpstreamTimeouts,
} from './upstream';

/** The Anthropic Messages API version the adapter speaks. */
export const ANTHROPIC_VERSION = '2023-06-01';

/** Where the Messages API is and how to authenticate to it. */
export interface AnthropicUpstreamConfig {
  /** e.g. `https://api.anthropic.com` (the adapter appends `/v1/messages`). */
  readonly baseUrl: string;
  readonly model: string;
  readonly apiKey: string;
  /** `max_tokens` when the client gives none (the Messages API requires one). */
  readonly maxTokens: number;
}

interface AnthropicEvent {
  type?: string;
  delta?: { type?: string; text?: string; stop_reason?: string | null };
  error?: { type?: string; message?: string };
}

/**
 * The Anthropic Messages API, translated to and from the OpenAI chat shape.
 *
 * System messages become the `system` field; consecutive messages of one role are joined,
 * because the API requires user and assistant turns to alternate, starting with a user turn.
 */
export class AnthropicUpstream implements Upstream {
  constructor(
    private readonly config: AnthropicUpstreamConfig,
    private readonly timeouts: UpstreamTimeouts,
  ) {}

  async *stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent> {
    const what = `Anthropic upstream ${new URL(this.config.baseUrl).host}`;
    const { system, messages } = toAnthropicMessages(request.messages);
    const response = await postJson(
      what,
      `${this.config.baseUrl.replace(/\/+$/, '')}/v1/messages`,
      { 'x-api-key': this.config.apiKey, 'anthropic-version': ANTHROPIC_VERSION },
      {
        model: this.config.model,
        max_tokens: request.maxTokens ?? this.config.maxTokens,
        messages,
        ...(system ? { system } : {}),
        ...(request.temperature !== undefined ? { temperature: Math.min(1, request.temperature) } : {}),
        stream: true,
      },
      this.timeouts,
      signal,
    );
    let finish: FinishReason | undefined;
    for await (const message of readServerSentEvents(what, response.body!, this.timeouts.idleMs, signal)) {
      let event: AnthropicEvent;
      try {
        event = JSON.parse(message.data) as AnthropicEvent;
      } catch {
        throw new UpstreamError(502, `${what} sent an event that is not JSON`);
      }
      const type = event.type ?? message.event;
      if (type === 'error') {
        const status = event.error?.type === 'overloaded_error' ? 'overloaded' : (event.error?.type ?? 'error');
        throw new UpstreamError(502, `${what} reported ${status}: ${event.error?.message ?? 'no message'}`);
      }
      if (type === 'content_block_delta' && event.delta?.type === 'text_delta' && event.delta.text) {
        yield { type: 'delta', text: event.delta.text };
      } else if (type === 'message_delta' && event.delta?.stop_reason) {
        finish = mapStopReason(event.delta.stop_reason);
      } else if (type === 'message_stop') {
        break;
      }
    }
    yield { type: 'finish', reason: finish ?? 'stop' };
  }
}

/** Splits OpenAI-style messages into Anthropic's `system` and alternating `messages`. */
export function toAnthropicMessages(messages: readonly CompletionMessage[]): {
  system: string;
  messages: { role: 'user' | 'assistant'; content: string }[];
} {
  const system = messages
    .filter((message) => message.role === 'system')
    .map((message) => message.content)
    .join('\n\n');
  const turns: { role: 'user' | 'assistant'; content: string }[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    const last = turns.at(-1);
    if (last && last.role === message.role) last.content += `\n\n${message.content}`;
    else turns.push({ role: message.role, content: message.content });
  }
  if (turns[0]?.role === 'assistant') turns.unshift({ role: 'user', content: '(conversation continues)' });
  if (turns.length === 0) throw new UpstreamError(502, 'A completion needs at least one user message');
  return { system, messages: turns };
}

function mapStopReason(reason: string): FinishReason {
  if (reason === 'max_tokens') return 'length';
  if (reason === 'refusal') return 'content_filter';
  return 'stop';
}
