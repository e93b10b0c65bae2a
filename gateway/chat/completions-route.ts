import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ApiErrorObject, ProblemDetails } from '../../shared/problem';
import { DECISION_ID_HEADER } from '../../shared/protocol';
import type { AccessService, ActiveSession } from '../access';
import type { RequestAuthenticator } from '../auth/request-auth';
import type { Catalog } from '../catalog';
import { problem, ProblemError, withApiError } from '../http/problems';
import { formatSseEvent, SSE_HEADERS } from '../http/sse';
import { upstreamFor, type UpstreamSettings } from './upstreams';
import { UpstreamError, type CompletionMessage, type FinishReason, type UpstreamEvent } from './upstream';

const TextPart = z.object({ type: z.literal('text'), text: z.string() });

/** The accepted subset of an OpenAI chat completions request; other fields are ignored. */
export const ChatCompletionRequest = z.object({
  model: z.string().min(1),
  messages: z
    .array(
      z.object({
        role: z.enum(['system', 'developer', 'user', 'assistant']),
        content: z.union([z.string(), z.array(TextPart)]),
      }),
    )
    .min(1),
  stream: z.boolean().optional(),
  max_tokens: z.number().int().positive().optional(),
  max_completion_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/**
 * `event: error` payload of a streamed completion that ended early.
 *
 * The RFC 9457 problem's members at the top level (what Clearance clients read), and OpenAI's
 * `error` object, which OpenAI SDKs raise as an `APIError` whose `error` is this object; it
 * carries the status the failure would have had, the reason as `code`, the rule and the
 * decision id (see `withApiError`).
 */
export type StreamErrorPayload = ProblemDetails & { readonly error: ApiErrorObject };

/** What the route needs from the gateway. */
export interface CompletionsRouteContext {
  readonly auth: RequestAuthenticator;
  readonly access: AccessService;
  readonly catalog: () => Catalog;
  readonly upstreams: UpstreamSettings;
  readonly log: (line: string) => void;
}

/** Builds the error event payload for a problem. */
export function streamErrorPayload(body: ProblemDetails): StreamErrorPayload {
  return withApiError(body);
}

type Step = { kind: 'event'; result: IteratorResult<UpstreamEvent> } | { kind: 'cut'; problem: ProblemDetails };

/**
 * `POST /v1/chat/completions`: decides on live policy, audits, then streams (or returns) the
 * upstream's answer. A policy change that denies a running completion ends it at once.
 */
export function registerCompletionsRoute(app: FastifyInstance, context: CompletionsRouteContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const { session } = await context.auth.sessionFromDpop(request);
    context.access.track(session);
    const parsed = ChatCompletionRequest.safeParse(request.body);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
      throw new ProblemError(problem('bad-request', 400, 'Invalid chat completion request', issues.join('; ')));
    }
    const body = parsed.data;
    const model = context.catalog().get(body.model);
    if (!model) {
      throw new ProblemError(problem('model-not-found', 404, 'Model not found', `There is no model "${body.model}".`));
    }
    const access = context.access.decide(session, model);
    const record = await context.access.record(session, access, { endpoint: 'chat.completions' });
    if (access.decision.effect === 'deny') {
      if (access.outcome.status === 'hidden') {
        throw new ProblemError(
          problem('model-not-found', 404, 'Model not found', `There is no model "${body.model}".`, {
            decisionId: record.decisionId,
          }),
        );
      }
      throw new ProblemError(context.access.deniedProblem(access, record.decisionId));
    }
    await runCompletion(context, request, reply, session, body, record.decisionId);
  });
}

async function runCompletion(
  context: CompletionsRouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  session: ActiveSession,
  body: ChatCompletionRequest,
  decisionId: string,
): Promise<void> {
  const model = context.catalog().get(body.model)!;
  const upstream = upstreamFor(model, context.upstreams);
  const controller = new AbortController();
  let onCut: (problem: ProblemDetails) => void = () => {};
  const cut = new Promise<Step>((resolve) => {
    onCut = (body) => resolve({ kind: 'cut', problem: body });
  });
  const registration = context.access.startCompletion({
    session,
    modelId: model.id,
    cut: (body) => {
      onCut(body);
      controller.abort(new Error('completion cut by policy'));
    },
  });
  let clientGone = false;
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) {
      clientGone = true;
      controller.abort(new Error('client closed the connection'));
    }
  });
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const events = upstream.stream(
    {
      model,
      messages: body.messages.map(toCompletionMessage),
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      ...(body.temperature !== undefined ? { temperature: body.temperature } : {}),
    },
    controller.signal,
  );
  const iterator = events[Symbol.asyncIterator]();
  const next = (): Promise<Step> => {
    const pending = iterator.next().then((result): Step => ({ kind: 'event', result }));
    pending.catch(() => {});
    return Promise.race([pending, cut]);
  };
  const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  try {
    let step: Step;
    try {
      step = await next();
    } catch (error) {
      throw upstreamProblemError(error, clientGone);
    }
    if (step.kind === 'cut') throw new ProblemError(step.problem);
    if (body.stream) {
      await streamResponse(
        reply,
        step,
        next,
        { id, created, model: model.id, decisionId },
        () => clientGone,
        context.log,
      );
    } else {
      let text = '';
      let finish: FinishReason = 'stop';
      while (step.kind === 'event' && !step.result.done) {
        const event = step.result.value;
        if (event.type === 'delta') text += event.text;
        else finish = event.reason;
        try {
          step = await next();
        } catch (error) {
          throw upstreamProblemError(error, clientGone);
        }
      }
      if (step.kind === 'cut') throw new ProblemError(step.problem);
      reply
        .header(DECISION_ID_HEADER, decisionId)
        .header('cache-control', 'no-store')
        .send({
          id,
          object: 'chat.completion',
          created,
          model: model.id,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish }],
        });
    }
  } finally {
    registration.dispose();
    if (!controller.signal.aborted) controller.abort(new Error('completion finished'));
  }
}

async function streamResponse(
  reply: FastifyReply,
  first: Step,
  next: () => Promise<Step>,
  meta: { id: string; created: number; model: string; decisionId: string },
  clientGone: () => boolean,
  log: (line: string) => void,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.on('error', (error) => log(`completion ${meta.id} stream failed: ${error.message}`));
  res.writeHead(200, { ...SSE_HEADERS, [DECISION_ID_HEADER]: meta.decisionId });
  const chunk = (delta: Record<string, string>, finishReason: FinishReason | null) =>
    `data: ${JSON.stringify({
      id: meta.id,
      object: 'chat.completion.chunk',
      created: meta.created,
      model: meta.model,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    })}\n\n`;
  res.write(chunk({ role: 'assistant', content: '' }, null));
  let step = first;
  try {
    for (;;) {
      if (step.kind === 'cut') {
        res.end(formatSseEvent({ event: 'error', data: JSON.stringify(streamErrorPayload(step.problem)) }));
        return;
      }
      if (step.result.done) break;
      const event = step.result.value;
      res.write(event.type === 'delta' ? chunk({ content: event.text }, null) : chunk({}, event.reason));
      step = await next();
    }
    res.end('data: [DONE]\n\n');
  } catch (error) {
    if (clientGone() || res.destroyed) return;
    const failure = upstreamProblemError(error, false);
    log(`completion ${meta.id} failed mid-stream: ${failure.problem.detail ?? failure.problem.title}`);
    res.end(formatSseEvent({ event: 'error', data: JSON.stringify(streamErrorPayload(failure.problem)) }));
  }
}

function upstreamProblemError(error: unknown, clientGone: boolean): ProblemError {
  if (error instanceof UpstreamError) {
    return new ProblemError(
      problem(
        error.status === 504 ? 'upstream-timeout' : 'upstream-error',
        error.status,
        error.status === 504 ? 'Model timed out' : 'Model unavailable',
        error.detail,
      ),
    );
  }
  if (clientGone) return new ProblemError(problem('bad-request', 499, 'Client closed the request'));
  return new ProblemError(
    problem(
      'upstream-error',
      502,
      'Model unavailable',
      `The model failed: ${(error as Error)?.message ?? String(error)}`,
    ),
  );
}

function toCompletionMessage(message: ChatCompletionRequest['messages'][number]): CompletionMessage {
  const content = typeof message.content === 'string' ? message.content : message.content.map((p) => p.text).join('');
  return { role: message.role === 'developer' ? 'system' : message.role, content };
}
