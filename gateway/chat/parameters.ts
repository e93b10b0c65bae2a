/**
 * The request parameters of OpenAI's chat completions API, and which ones each kind of
 * upstream can honour. Imports nothing, so the catalog can validate against it.
 */

/** Every request parameter OpenAI's chat completions API defines (a name outside this list is refused). */
export const OPENAI_CHAT_PARAMETERS = [
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'n',
  'stop',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'user',
  'seed',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'functions',
  'function_call',
  'service_tier',
  'store',
  'metadata',
  'modalities',
  'audio',
  'prediction',
  'reasoning_effort',
  'verbosity',
  'web_search_options',
  'prompt_cache_key',
  'safety_identifier',
] as const;

/** One chat completions request parameter. */
export type ChatParameter = (typeof OPENAI_CHAT_PARAMETERS)[number];

/** Parameters every model takes: the gateway itself handles them. */
export const BASE_PARAMETERS: readonly ChatParameter[] = ['model', 'messages', 'stream'];

/** What each kind of upstream can honour at most; a catalog entry may narrow it, never widen it. */
export const UPSTREAM_PARAMETERS: Readonly<Record<'openai' | 'anthropic' | 'demo', readonly ChatParameter[]>> = {
  openai: OPENAI_CHAT_PARAMETERS.filter((name) => !BASE_PARAMETERS.includes(name)),
  // The Messages API equivalents: stop → stop_sequences, user → metadata.user_id, tools → tools,
  // tool_choice → tool_choice, parallel_tool_calls: false → disable_parallel_tool_use.
  anthropic: [
    'stream_options',
    'max_tokens',
    'max_completion_tokens',
    'temperature',
    'top_p',
    'stop',
    'user',
    'tools',
    'tool_choice',
    'parallel_tool_calls',
  ],
  // Deterministic text: `seed` and sampling settings change nothing, so they are trivially honoured.
  demo: ['stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'n', 'stop', 'seed', 'user'],
};

/** The parameters a model honours: its catalog list (within what its upstream can do) or its upstream's default. */
export function modelParameters(
  kind: keyof typeof UPSTREAM_PARAMETERS,
  listed: readonly string[] | undefined,
): readonly ChatParameter[] {
  const possible = UPSTREAM_PARAMETERS[kind];
  return listed ? possible.filter((name) => listed.includes(name)) : possible;
}
