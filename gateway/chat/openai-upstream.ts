import { readServerSentEventBatches } from './sse-reader';
import {
  postForEventStream,
  UpstreamError,
  type ChunkChoice,
  type Upstream,
  type UpstreamEvent,
  type UpstreamRequest,
  type UpstreamTransport,
  type Usage,
} from './upstream';

/** Where an OpenAI-compatible endpoint is and how to authenticate to it. */
export interface OpenAiUpstreamConfig {
  /** Base URL including the version path, e.g. `https://api.openai.com/v1`. */
  readonly baseUrl: string;
  readonly model: string;
  /** Sent as `Authorization: Bearer`; omitted when undefined (local servers). */
  readonly apiKey?: string;
  /** Ask for the usage chunk (`stream_options.include_usage`); off when the model does not take it. */
  readonly requestUsage?: boolean;
}

interface OpenAiChunk {
  error?: { message?: string } | string;
  choices?: ChunkChoice[];
  usage?: Usage | null;
}

/**
 * Any OpenAI-compatible chat completions endpoint, always called with `stream: true`.
 *
 * The client's messages and parameters are passed on as they are (the model is the catalog's),
 * and each chunk's choices (content, tool calls, refusals, log probabilities) come back as they are.
 */
export class OpenAiUpstream implements Upstream {
  constructor(
    private readonly config: OpenAiUpstreamConfig,
    private readonly transport: UpstreamTransport,
  ) {}

  async *stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent> {
    const { what, url } = endpointOf(this.config.baseUrl);
    const response = await postForEventStream(
      what,
      url,
      this.config.apiKey ? { authorization: `Bearer ${this.config.apiKey}` } : {},
      {
        ...request.params,
        model: this.config.model,
        messages: request.messages,
        stream: true,
        ...(this.config.requestUsage !== false ? { stream_options: { include_usage: true } } : {}),
      },
      this.transport,
      signal,
    );
    const limits = { idleMs: this.transport.timeouts.idleMs, maxEventBytes: this.transport.maxEventBytes };
    for await (const batch of readServerSentEventBatches(what, response.body, limits, signal)) {
      for (const message of batch) {
        if (message.data.trim() === '[DONE]') return;
        let chunk: OpenAiChunk;
        try {
          chunk = JSON.parse(message.data) as OpenAiChunk;
        } catch {
          throw new UpstreamError(502, `${what} sent a chunk that is not JSON`);
        }
        if (chunk.error) {
          const detail = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'unknown error');
          throw new UpstreamError(
            502,
            `${what} reported an error; its message is in the gateway's log`,
            `${what} reported an error: ${detail}`,
          );
        }
        if (Array.isArray(chunk.choices) && chunk.choices.length > 0) {
          yield { type: 'choices', choices: chunk.choices.map(normalChoice) };
        }
        if (chunk.usage && typeof chunk.usage.prompt_tokens === 'number') yield { type: 'usage', usage: chunk.usage };
      }
    }
  }
}

/** Each base URL's name in messages and completions URL, worked out once (one is built per call). */
const endpoints = new Map<string, { readonly what: string; readonly url: string }>();

function endpointOf(baseUrl: string): { readonly what: string; readonly url: string } {
  let endpoint = endpoints.get(baseUrl);
  if (!endpoint) {
    endpoint = { what: `Upstream ${new URL(baseUrl).host}`, url: `${baseUrl.replace(/\/+$/, '')}/chat/completions` };
    if (endpoints.size >= 1000) endpoints.clear();
    endpoints.set(baseUrl, endpoint);
  }
  return endpoint;
}

function normalChoice(choice: ChunkChoice): ChunkChoice {
  return {
    index: typeof choice.index === 'number' ? choice.index : 0,
    delta: typeof choice.delta === 'object' && choice.delta !== null ? choice.delta : {},
    finish_reason: choice.finish_reason ?? null,
    ...(choice.logprobs !== undefined ? { logprobs: choice.logprobs } : {}),
  };
}
