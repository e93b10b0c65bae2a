import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiErrorObject, ProblemDetails } from '../../shared/problem';
import { DECISION_ID_HEADER, REQUEST_ID_HEADER } from '../../shared/protocol';
import type { AccessService, ActiveSession } from '../access';
import type { RequestAuthenticator } from '../auth/request-auth';
import type { Catalog, CatalogModel } from '../catalog';
import { randomHex } from '../http/ids';
import { modelNotFoundProblem, problem, ProblemError, withApiError } from '../http/problems';
import { formatSseEvent, SSE_HEADERS } from '../http/sse';
import { currentRequest, recordUpstreamFirstByte, serverTiming } from '../observability/context';
import { checkRequest, parseChatRequest, type CheckedRequest } from './request';
import { upstreamFor, type UpstreamSettings } from './upstreams';
import { UpstreamError, type ChunkChoice, type UpstreamEvent, type Usage } from './upstream';

export { ChatCompletionRequest } from './request';

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

/** How a completion ended, as its audit record says. */
type Outcome = 'complete' | 'cut' | 'upstream-error' | 'client-closed';

type Step = { kind: 'event'; result: IteratorResult<UpstreamEvent> } | { kind: 'cut'; problem: ProblemDetails };

/** One choice of a non-streamed completion, built from the deltas. */
interface ChoiceAccumulator {
  role: string;
  content: string | null;
  refusal: string | null;
  toolCalls: { id?: string; type?: string; function: { name: string; arguments: string } }[];
  logprobs: { content: unknown[] | null; refusal: unknown[] | null } | null;
  finish: string | null;
}

/**
 * `POST /v1/chat/completions`: decides on live policy, checks the parameters against the
 * model, audits, then streams (or returns) the upstream's answer. A policy change that
 * denies a running completion ends it at once.
 */
export function registerCompletionsRoute(app: FastifyInstance, context: CompletionsRouteContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const { session } = await context.auth.sessionFromDpop(request);
    context.access.track(session);
    const body = parseChatRequest(request.body);
    const model = context.catalog().get(body.model);
    if (!model) {
      const unknown = await context.access.recordUnknownModel(session, body.model, {
        endpoint: 'chat.completions',
        requestId: request.id,
      });
      throw new ProblemError(modelNotFoundProblem(body.model, unknown.decisionId));
    }
    const access = context.access.decide(session, model);
    // Parameters are checked only once access is allowed, so a refused caller learns nothing of the model.
    const checked = access.decision.effect === 'allow' ? checkRequest(body, model) : undefined;
    const record = await context.access.record(session, access, {
      endpoint: 'chat.completions',
      requestId: request.id,
      ...(checked?.params.user !== undefined ? { endUser: checked.params.user } : {}),
    });
    if (!checked) {
      if (access.outcome.status === 'hidden') {
        throw new ProblemError(modelNotFoundProblem(body.model, record.decisionId));
      }
      throw new ProblemError(context.access.deniedProblem(access, record.decisionId));
    }
    await runCompletion(context, request, reply, session, model, checked, record.decisionId);
  });
}

async function runCompletion(
  context: CompletionsRouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  session: ActiveSession,
  model: CatalogModel,
  body: CheckedRequest,
  decisionId: string,
): Promise<void> {
  const controller = new AbortController();
  let onCut: (problem: ProblemDetails) => void = () => {};
  let wasCut = false;
  const cut = new Promise<Step>((resolve) => {
    onCut = (problem) => {
      wasCut = true;
      resolve({ kind: 'cut', problem });
    };
  });
  const registration = context.access.startCompletion({
    session,
    modelId: model.id,
    cut: (problem) => {
      onCut(problem);
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
  const id = `chatcmpl-${randomHex(12)}`;
  const created = Math.floor(Date.now() / 1000);
  const meta = { id, created, model: model.id, decisionId, requestId: request.id };
  let usage: Usage | undefined;
  let outcome: Outcome = 'complete';
  const finishes: string[] = [];
  try {
    const upstream = upstreamFor(model, context.upstreams);
    const events = upstream.stream({ model, messages: body.messages, params: body.params }, controller.signal);
    const iterator = events[Symbol.asyncIterator]();
    const next = async (): Promise<Step> => {
      const pending = iterator.next().then((result): Step => ({ kind: 'event', result }));
      // Stryker disable next-line CallExpression: Promise.race below subscribes to `pending` in the same turn, so its rejection is always handled; this only states it
      pending.catch(() => {});
      const step = await Promise.race([pending, cut]);
      if (step.kind === 'event' && !step.result.done) {
        const event = step.result.value;
        if (event.type === 'usage') usage = event.usage;
        else for (const choice of event.choices) if (choice.finish_reason) finishes.push(choice.finish_reason);
      }
      return step;
    };
    let step: Step;
    const sentAt = performance.now();
    try {
      step = await next();
    } catch (error) {
      recordUpstreamFirstByte('error', performance.now() - sentAt);
      throw upstreamProblemError(error, clientGone, context.log, meta.requestId);
    }
    recordUpstreamFirstByte('ok', performance.now() - sentAt);
    if (step.kind === 'cut') throw new ProblemError(step.problem);
    if (body.stream) {
      outcome = await streamResponse(
        reply,
        step,
        next,
        cut,
        meta,
        body.includeUsage,
        () => usage,
        () => clientGone,
        context,
      );
    } else {
      const choices = new Map<number, ChoiceAccumulator>();
      let size = 0;
      const limit = context.upstreams.transport.maxEventBytes * 32;
      while (step.kind === 'event' && !step.result.done) {
        const event = step.result.value;
        if (event.type === 'choices') {
          for (const choice of event.choices) size += accumulate(choices, choice);
          if (size > limit) {
            throw new ProblemError(
              problem(
                'upstream-error',
                502,
                'Model unavailable',
                `The model's answer exceeded the gateway's limit of ${limit} bytes.`,
              ),
            );
          }
        }
        try {
          step = await next();
        } catch (error) {
          throw upstreamProblemError(error, clientGone, context.log, meta.requestId);
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
          choices: [...choices.entries()]
            .sort(([a], [b]) => a - b)
            .map(([index, choice]) => finalChoice(index, choice)),
          ...(usage ? { usage } : {}),
        });
    }
  } catch (error) {
    outcome = wasCut ? 'cut' : clientGone ? 'client-closed' : 'upstream-error';
    if (error instanceof UpstreamError) throw upstreamProblemError(error, clientGone, context.log, meta.requestId);
    throw error;
  } finally {
    registration.dispose();
    // A completion that ended early stops its upstream call. One that ran to its end has nothing
    // left to stop, and an abort would make the HTTP client destroy the finished body with a
    // fresh error whose stack trace Node formats (≈ 10 % of a call's CPU under load).
    if (outcome !== 'complete' && !controller.signal.aborted) controller.abort(new Error('completion ended early'));
    context.access
      .recordCompletion(session, {
        decisionId,
        requestId: meta.requestId,
        model: model.id,
        outcome,
        finishReasons: finishes,
        ...(usage ? { usage } : {}),
      })
      .catch((error: unknown) => context.log(`auditing completion ${id} failed: ${(error as Error).message}`));
  }
}

/** Adds one streamed choice to the accumulated completion; returns the bytes it added. */
function accumulate(choices: Map<number, ChoiceAccumulator>, choice: ChunkChoice): number {
  let entry = choices.get(choice.index);
  if (!entry) {
    entry = { role: 'assistant', content: null, refusal: null, toolCalls: [], logprobs: null, finish: null };
    choices.set(choice.index, entry);
  }
  let size = 0;
  const delta = choice.delta as {
    role?: string;
    content?: string | null;
    refusal?: string | null;
    tool_calls?: { index?: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }[];
  };
  if (typeof delta.role === 'string') entry.role = delta.role;
  if (typeof delta.content === 'string') {
    entry.content = (entry.content ?? '') + delta.content;
    size += delta.content.length;
  }
  if (typeof delta.refusal === 'string') {
    entry.refusal = (entry.refusal ?? '') + delta.refusal;
    size += delta.refusal.length;
  }
  for (const call of delta.tool_calls ?? []) {
    const at = typeof call.index === 'number' ? call.index : entry.toolCalls.length;
    const target = (entry.toolCalls[at] ??= { function: { name: '', arguments: '' } });
    if (call.id) target.id = call.id;
    if (call.type) target.type = call.type;
    if (call.function?.name) target.function.name += call.function.name;
    if (call.function?.arguments) {
      target.function.arguments += call.function.arguments;
      size += call.function.arguments.length;
    }
  }
  const logprobs = choice.logprobs as { content?: unknown[] | null; refusal?: unknown[] | null } | null | undefined;
  if (logprobs) {
    entry.logprobs ??= { content: null, refusal: null };
    if (Array.isArray(logprobs.content))
      entry.logprobs.content = [...(entry.logprobs.content ?? []), ...logprobs.content];
    if (Array.isArray(logprobs.refusal))
      entry.logprobs.refusal = [...(entry.logprobs.refusal ?? []), ...logprobs.refusal];
    size += JSON.stringify(logprobs).length;
  }
  if (choice.finish_reason) entry.finish = choice.finish_reason;
  return size;
}

function finalChoice(index: number, choice: ChoiceAccumulator) {
  return {
    index,
    message: {
      role: choice.role,
      content: choice.content ?? (choice.toolCalls.length > 0 ? null : ''),
      refusal: choice.refusal,
      ...(choice.toolCalls.length > 0
        ? {
            tool_calls: choice.toolCalls.map((call) => ({
              id: call.id,
              type: call.type ?? 'function',
              function: call.function,
            })),
          }
        : {}),
    },
    logprobs: choice.logprobs,
    finish_reason: choice.finish ?? 'stop',
  };
}

/**
 * Writes the event stream, never more than one event ahead of the client: when the socket's
 * buffer is full, the gateway waits for it to drain before it reads the upstream again, so a
 * client that stops reading holds the upstream instead of the gateway's memory.
 */
async function streamResponse(
  reply: FastifyReply,
  first: Step,
  next: () => Promise<Step>,
  cut: Promise<Step>,
  meta: { id: string; created: number; model: string; decisionId: string; requestId: string },
  includeUsage: boolean,
  usage: () => Usage | undefined,
  clientGone: () => boolean,
  context: CompletionsRouteContext,
): Promise<Outcome> {
  // Stryker disable next-line CallExpression: equivalent here: this function never throws and the handler resolves only after res.end() or a destroyed socket, with the headers sent, so Fastify sends nothing of its own either way (wrap-thenable checks headersSent); the hijack states that the raw response is ours
  reply.hijack();
  const res = reply.raw;
  res.on('error', (error) => context.log(`completion ${meta.id} stream failed: ${error.message}`));
  const observation = currentRequest();
  res.writeHead(200, {
    ...SSE_HEADERS,
    [DECISION_ID_HEADER]: meta.decisionId,
    [REQUEST_ID_HEADER]: meta.requestId,
    ...(observation ? { 'server-timing': serverTiming(observation) } : {}),
  });
  const chunk = (choices: readonly ChunkChoice[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({
      id: meta.id,
      object: 'chat.completion.chunk',
      created: meta.created,
      model: meta.model,
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    })}\n\n`;
  let step = first;
  try {
    for (;;) {
      if (step.kind === 'cut') {
        res.end(formatSseEvent({ event: 'error', data: JSON.stringify(streamErrorPayload(step.problem)) }));
        return 'cut';
      }
      if (step.result.done) break;
      const event = step.result.value;
      if (event.type === 'choices') {
        const drained = await write(res, chunk(event.choices), cut);
        if (drained === 'closed') return 'client-closed';
        if (drained !== 'ok') {
          res.end(formatSseEvent({ event: 'error', data: JSON.stringify(streamErrorPayload(drained.problem)) }));
          return 'cut';
        }
      }
      step = await next();
    }
    const final = usage();
    if (includeUsage && final) res.write(chunk([], { usage: final }));
    res.end('data: [DONE]\n\n');
    return 'complete';
  } catch (error) {
    if (clientGone() || res.destroyed) return 'client-closed';
    const failure = upstreamProblemError(error, false, context.log, meta.requestId);
    res.end(formatSseEvent({ event: 'error', data: JSON.stringify(streamErrorPayload(failure.problem)) }));
    return 'upstream-error';
  }
}

/** Bytes a client may have waiting in the gateway before it stops reading the upstream for it. */
const CLIENT_BUFFER_BYTES = 256 * 1024;

/**
 * Writes `text`; when more than `CLIENT_BUFFER_BYTES` wait for the client, waits for them to
 * drain, the client to go, or a cut.
 */
async function write(
  res: ServerResponse,
  text: string,
  cut: Promise<Step>,
): Promise<'ok' | 'closed' | { problem: ProblemDetails }> {
  if (res.destroyed) return 'closed';
  // Stryker disable next-line EqualityOperator: `<=` differs only when exactly 262,144 bytes wait after a write; both keep at most 256 KiB plus the one event that crossed it waiting, and no test can place the kernel's share of a socket to that byte
  if (res.write(text) || res.writableLength < CLIENT_BUFFER_BYTES) return 'ok';
  let cleanup = () => {};
  const drained = new Promise<'ok' | 'closed'>((resolve) => {
    const onDrain = () => resolve('ok');
    const onClose = () => resolve('closed');
    res.once('drain', onDrain);
    res.once('close', onClose);
    cleanup = () => {
      res.off('drain', onDrain);
      res.off('close', onClose);
    };
  });
  try {
    const result = await Promise.race([drained, cut]);
    return typeof result === 'string' ? result : result.kind === 'cut' ? { problem: result.problem } : 'ok';
  } finally {
    cleanup();
  }
}

/**
 * The problem for an upstream failure. The upstream's own words go to the log with the
 * request id, never to the caller.
 */
function upstreamProblemError(
  error: unknown,
  clientGone: boolean,
  log: (line: string) => void,
  requestId: string,
): ProblemError {
  if (error instanceof ProblemError) return error;
  if (error instanceof UpstreamError) {
    log(`request ${requestId}: ${error.logDetail}`);
    return new ProblemError(
      problem(
        error.status === 504 ? 'upstream-timeout' : 'upstream-error',
        error.status,
        error.status === 504 ? 'Model timed out' : 'Model unavailable',
        error.detail,
      ),
    );
  }
  // Stryker disable next-line StringLiteral: the 499 answers a client that has gone: nobody receives its body, only its status reaches the request log (proven: completions-route.unit.test.ts)
  if (clientGone) return new ProblemError(problem('bad-request', 499, 'Client closed the request'));
  log(`request ${requestId}: the model failed: ${(error as Error)?.stack ?? String(error)}`);
  return new ProblemError(
    problem(
      'upstream-error',
      502,
      'Model unavailable',
      `The model failed; the gateway's log has the details (request ${requestId}).`,
    ),
  );
}
