import { z } from 'zod';
import type { ProblemDetails } from '../../shared/problem';
import type { CatalogModel } from '../catalog';
import { problem, ProblemError, unsupportedParameterProblem } from '../http/problems';
import { BASE_PARAMETERS, modelParameters, OPENAI_CHAT_PARAMETERS } from './parameters';
import type { ChatMessage } from './upstream';

const ContentPart = z.looseObject({ type: z.string().min(1) });

const Message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
});

const Tool = z.looseObject({
  type: z.string().min(1),
  function: z.looseObject({ name: z.string().min(1) }).optional(),
});

/**
 * An OpenAI chat completions request as the gateway checks it: the members it reads are typed,
 * the rest of OpenAI's parameters pass as they are to upstreams that honour them.
 */
export const ChatCompletionRequest = z.looseObject({
  // Echoed in the 404 and recorded in the audit: bounded like `user`.
  model: z.string().min(1).max(256),
  messages: z.array(Message).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  seed: z.number().int().nullish(),
  // Copied into the audit record as `endUser`: bounded, so one caller cannot write megabytes a call.
  user: z.string().max(256).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(Tool).nullish(),
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string(), function: z.unknown() })])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: z.looseObject({ type: z.string().min(1) }).nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** A request the gateway will run: the upstream's messages and parameters, and what the client asked of the stream. */
export interface CheckedRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
  /** Choices to produce (`n`). */
  readonly n: number;
  /** Parameters for the upstream: everything but model, messages, stream and stream_options; nulls dropped. */
  readonly params: Readonly<Record<string, unknown>>;
}

function badRequest(detail: string, param: string | null): ProblemDetails {
  return problem('bad-request', 400, 'Invalid chat completion request', detail, {
    error: { message: detail, type: 'invalid_request_error', code: 'invalid_request', param },
  });
}

function paramPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) => (typeof key === 'number' ? `[${key}]` : `${index > 0 ? '.' : ''}${String(key)}`))
    .join('');
}

/** Parses the body; an unknown parameter or an invalid value is a 400 naming `param`. */
export function parseChatRequest(body: unknown): ChatCompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProblemError(badRequest('The body must be a JSON object.', null));
  }
  for (const key of Object.keys(body)) {
    if (!(OPENAI_CHAT_PARAMETERS as readonly string[]).includes(key)) {
      throw new ProblemError(
        unsupportedParameterProblem(
          key,
          `Unrecognized request parameter "${key}": it is not part of the chat completions API.`,
        ),
      );
    }
  }
  const parsed = ChatCompletionRequest.safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${paramPath(issue.path) || '(body)'}: ${issue.message}`);
    const first = parsed.error.issues[0];
    throw new ProblemError(
      badRequest(issues.join('; '), first && first.path.length > 0 ? paramPath(first.path) : null),
    );
  }
  return parsed.data;
}

/**
 * Checks a parsed request against what the chosen model honours.
 *
 * A parameter the model's catalog entry (or upstream kind) does not list is a 400 naming it,
 * never silently dropped; so is a message the upstream cannot take.
 */
export function checkRequest(request: ChatCompletionRequest, model: CatalogModel): CheckedRequest {
  const supported = new Set<string>([...BASE_PARAMETERS, ...modelParameters(model.upstream.kind, model.parameters)]);
  const params: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) {
    if (value === null || value === undefined) continue;
    if (!supported.has(key)) {
      throw new ProblemError(
        unsupportedParameterProblem(key, `${model.name} does not support the "${key}" parameter; leave it out.`),
      );
    }
    if (!(BASE_PARAMETERS as readonly string[]).includes(key) && key !== 'stream_options') params[key] = value;
  }
  if (request.stream_options && !request.stream) {
    throw new ProblemError(badRequest('"stream_options" is only allowed with "stream": true.', 'stream_options'));
  }
  if (model.upstream.kind !== 'openai') {
    for (const [index, message] of request.messages.entries()) {
      const toolTurn = message.role === 'tool' || message.role === 'function' || message.tool_calls !== undefined;
      if (toolTurn && !supported.has('tools')) {
        throw new ProblemError(
          unsupportedParameterProblem(`messages[${index}]`, `${model.name} does not take tool calls or tool results.`),
        );
      }
      if (message.role === 'function') {
        throw new ProblemError(
          unsupportedParameterProblem(
            `messages[${index}].role`,
            `${model.name} takes "tool" messages, not "function".`,
          ),
        );
      }
      if (Array.isArray(message.content) && message.content.some((part) => part.type !== 'text')) {
        throw new ProblemError(
          unsupportedParameterProblem(`messages[${index}].content`, `${model.name} takes text content only.`),
        );
      }
    }
  }
  return {
    model: request.model,
    messages: request.messages as readonly ChatMessage[],
    stream: request.stream === true,
    includeUsage: request.stream_options?.include_usage === true,
    n: request.n ?? 1,
    params,
  };
}
