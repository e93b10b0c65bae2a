import { contentText } from './messages';
import { readServerSentEvents } from './sse-reader';
import {
  postForEventStream,
  UpstreamError,
  type ChatMessage,
  type FinishReason,
  type Upstream,
  type UpstreamEvent,
  type UpstreamRequest,
  type UpstreamTransport,
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
  index?: number;
  message?: {
    usage?: { input_tokens?: number; cache_creation_input_tokens?: number; cache_read_input_tokens?: number };
  };
  content_block?: { type?: string; id?: string; name?: string };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null };
  usage?: { output_tokens?: number };
  error?: { type?: string; message?: string };
}

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string };

/** One Messages API turn: a plain string when it is only text. */
export interface AnthropicTurn {
  role: 'user' | 'assistant';
  content: string | Block[];
}

/**
 * The Anthropic Messages API, translated to and from the OpenAI chat shape.
 *
 * System messages become the `system` field; consecutive messages of one role are joined,
 * because the API requires user and assistant turns to alternate, starting with a user turn.
 * OpenAI's `stop`, `user`, `top_p`, `tools`, `tool_choice` and `parallel_tool_calls` map to
 * their Messages API equivalents; tool calls and results map to `tool_use` / `tool_result` blocks.
 */
export class AnthropicUpstream implements Upstream {
  constructor(
    private readonly config: AnthropicUpstreamConfig,
    private readonly transport: UpstreamTransport,
  ) {}

  async *stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent> {
    const what = `Anthropic upstream ${new URL(this.config.baseUrl).host}`;
    const { system, messages } = toAnthropicMessages(request.messages);
    const response = await postForEventStream(
      what,
      `${this.config.baseUrl.replace(/\/+$/, '')}/v1/messages`,
      { 'x-api-key': this.config.apiKey, 'anthropic-version': ANTHROPIC_VERSION },
      {
        model: this.config.model,
        ...anthropicParameters(request.params, this.config.maxTokens),
        messages,
        ...(system ? { system } : {}),
        stream: true,
      },
      this.transport,
      signal,
    );
    const limits = { idleMs: this.transport.timeouts.idleMs, maxEventBytes: this.transport.maxEventBytes };
    let finish: FinishReason | undefined;
    let inputTokens = 0;
    let outputTokens = 0;
    const toolIndex = new Map<number, number>();
    for await (const message of readServerSentEvents(what, response.body, limits, signal)) {
      let event: AnthropicEvent;
      try {
        event = JSON.parse(message.data) as AnthropicEvent;
      } catch {
        throw new UpstreamError(502, `${what} sent an event that is not JSON`);
      }
      const type = event.type ?? message.event;
      if (type === 'error') {
        const status = event.error?.type === 'overloaded_error' ? 'overloaded' : (event.error?.type ?? 'error');
        throw new UpstreamError(
          502,
          `${what} reported ${status}; its message is in the gateway's log`,
          `${what} reported ${status}: ${event.error?.message ?? 'no message'}`,
        );
      }
      if (type === 'message_start') {
        const usage = event.message?.usage;
        inputTokens =
          (usage?.input_tokens ?? 0) +
          (usage?.cache_creation_input_tokens ?? 0) +
          (usage?.cache_read_input_tokens ?? 0);
        yield {
          type: 'choices',
          choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
        };
      } else if (type === 'content_block_start' && event.content_block?.type === 'tool_use') {
        const index = toolIndex.size;
        toolIndex.set(event.index ?? 0, index);
        const call = {
          index,
          id: event.content_block.id,
          type: 'function',
          function: { name: event.content_block.name, arguments: '' },
        };
        yield { type: 'choices', choices: [{ index: 0, delta: { tool_calls: [call] }, finish_reason: null }] };
      } else if (type === 'content_block_delta' && event.delta?.type === 'text_delta' && event.delta.text) {
        yield { type: 'choices', choices: [{ index: 0, delta: { content: event.delta.text }, finish_reason: null }] };
      } else if (type === 'content_block_delta' && event.delta?.type === 'input_json_delta') {
        const index = toolIndex.get(event.index ?? 0) ?? 0;
        const call = { index, function: { arguments: event.delta.partial_json ?? '' } };
        yield { type: 'choices', choices: [{ index: 0, delta: { tool_calls: [call] }, finish_reason: null }] };
      } else if (type === 'message_delta') {
        if (event.delta?.stop_reason) finish = mapStopReason(event.delta.stop_reason);
        if (typeof event.usage?.output_tokens === 'number') outputTokens = event.usage.output_tokens;
      } else if (type === 'message_stop') {
        break;
      }
    }
    yield { type: 'choices', choices: [{ index: 0, delta: {}, finish_reason: finish ?? 'stop' }] };
    yield {
      type: 'usage',
      usage: { prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens },
    };
  }
}

/** OpenAI request parameters as their Messages API equivalents. */
export function anthropicParameters(
  params: Readonly<Record<string, unknown>>,
  defaultMaxTokens: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    max_tokens: params.max_completion_tokens ?? params.max_tokens ?? defaultMaxTokens,
  };
  if (typeof params.temperature === 'number') out.temperature = Math.min(1, params.temperature);
  if (params.top_p !== undefined) out.top_p = params.top_p;
  if (params.stop !== undefined) out.stop_sequences = typeof params.stop === 'string' ? [params.stop] : params.stop;
  if (typeof params.user === 'string') out.metadata = { user_id: params.user };
  if (Array.isArray(params.tools)) {
    out.tools = params.tools.map(
      (tool: { function?: { name?: string; description?: string; parameters?: unknown } }) => ({
        name: tool.function?.name,
        ...(tool.function?.description ? { description: tool.function.description } : {}),
        input_schema: tool.function?.parameters ?? { type: 'object', properties: {} },
      }),
    );
  }
  let choice: Record<string, unknown> | undefined;
  const toolChoice = params.tool_choice as string | { function?: { name?: string } } | undefined;
  if (toolChoice === 'none') choice = { type: 'none' };
  else if (toolChoice === 'auto') choice = { type: 'auto' };
  else if (toolChoice === 'required') choice = { type: 'any' };
  else if (typeof toolChoice === 'object' && toolChoice?.function?.name)
    choice = { type: 'tool', name: toolChoice.function.name };
  if (params.parallel_tool_calls === false && choice?.type !== 'none')
    choice = { type: 'auto', ...choice, disable_parallel_tool_use: true };
  if (choice) out.tool_choice = choice;
  return out;
}

function blocksOf(message: ChatMessage): Block[] {
  if (message.role === 'tool') {
    return [
      { type: 'tool_result', tool_use_id: String(message.tool_call_id ?? ''), content: contentText(message.content) },
    ];
  }
  const blocks: Block[] = [];
  const text = contentText(message.content);
  if (text) blocks.push({ type: 'text', text });
  const calls = Array.isArray(message.tool_calls)
    ? (message.tool_calls as { id?: string; function?: { name?: string; arguments?: string } }[])
    : [];
  for (const call of calls) {
    let input: unknown;
    try {
      input = JSON.parse(call.function?.arguments || '{}');
    } catch {
      throw new UpstreamError(502, `The arguments of tool call ${call.id ?? '(no id)'} are not JSON`);
    }
    blocks.push({ type: 'tool_use', id: String(call.id ?? ''), name: String(call.function?.name ?? ''), input });
  }
  return blocks;
}

/** Splits OpenAI-style messages into Anthropic's `system` and alternating `messages`. */
export function toAnthropicMessages(messages: readonly ChatMessage[]): { system: string; messages: AnthropicTurn[] } {
  const system = messages
    .filter((message) => message.role === 'system' || message.role === 'developer')
    .map((message) => contentText(message.content))
    .join('\n\n');
  const turns: { role: 'user' | 'assistant'; blocks: Block[] }[] = [];
  for (const message of messages) {
    if (message.role === 'system' || message.role === 'developer') continue;
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks = blocksOf(message);
    const last = turns.at(-1);
    if (last && last.role === role) last.blocks.push(...blocks);
    else turns.push({ role, blocks });
  }
  if (turns[0]?.role === 'assistant')
    turns.unshift({ role: 'user', blocks: [{ type: 'text', text: '(conversation continues)' }] });
  if (turns.length === 0) throw new UpstreamError(502, 'A completion needs at least one user message');
  return {
    system,
    messages: turns.map(({ role, blocks }) => ({
      role,
      content: blocks.every((block) => block.type === 'text')
        ? blocks.map((block) => (block as { text: string }).text).join('\n\n')
        : blocks,
    })),
  };
}

function mapStopReason(reason: string): FinishReason {
  if (reason === 'max_tokens') return 'length';
  if (reason === 'tool_use') return 'tool_calls';
  if (reason === 'refusal') return 'content_filter';
  return 'stop';
}
