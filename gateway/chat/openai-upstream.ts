import { readServerSentEvents } from './sse-reader';
import {
  postJson,
  UpstreamError,
  type FinishReason,
  type Upstream,
  type UpstreamEvent,
  type UpstreamRequest,
  type UpstreamTimeouts,
} from './upstream';

/** Where an OpenAI-compatible endpoint is and how to authenticate to it. */
export interface OpenAiUpstreamConfig {
  /** Base URL including the version path, e.g. `https://api.openai.com/v1`. */
  readonly baseUrl: string;
  readonly model: string;
  /** Sent as `Authorization: Bearer`; omitted when undefined (local servers). */
  readonly apiKey?: string;
}

interface OpenAiChunk {
  error?: { message?: string } | string;
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
}

/**
 * Any OpenAI-compatible chat completions endpoint, always called with `stream: true`.
 */
export class OpenAiUpstream implements Upstream {
  constructor(
    private readonly config: OpenAiUpstreamConfig,
    private readonly timeouts: UpstreamTimeouts,
  ) {}

  async *stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent> {
    const what = `Upstream ${new URL(this.config.baseUrl).host}`;
    const response = await postJson(
      what,
      `${this.config.baseUrl.replace(/\/+$/, '')}/chat/completions`,
      this.config.apiKey ? { authorization: `Bearer ${this.config.apiKey}` } : {},
      {
        model: this.config.model,
        messages: request.messages,
        stream: true,
        ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      },
      this.timeouts,
      signal,
    );
    let finished = false;
    for await (const message of readServerSentEvents(what, response.body!, this.timeouts.idleMs, signal)) {
      if (message.data.trim() === '[DONE]') break;
      let chunk: OpenAiChunk;
      try {
        chunk = JSON.parse(message.data) as OpenAiChunk;
      } catch {
        throw new UpstreamError(502, `${what} sent a chunk that is not JSON`);
      }
      if (chunk.error) {
        const detail = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'unknown error');
        throw new UpstreamError(502, `${what} reported an error: ${detail}`);
      }
      const choice = chunk.choices?.[0];
      const text = choice?.delta?.content;
      if (typeof text === 'string' && text.length > 0) yield { type: 'delta', text };
      if (choice?.finish_reason && !finished) {
        finished = true;
        yield { type: 'finish', reason: mapFinishReason(choice.finish_reason) };
      }
    }
    if (!finished) yield { type: 'finish', reason: 'stop' };
  }
}

function mapFinishReason(reason: string): FinishReason {
  if (reason === 'length') return 'length';
  if (reason === 'content_filter') return 'content_filter';
  return 'stop';
}
