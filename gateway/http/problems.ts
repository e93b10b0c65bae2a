import type { FastifyReply } from 'fastify';
import {
  PROBLEM_CONTENT_TYPE,
  UNSUPPORTED_PARAMETER_CODE,
  type ApiErrorObject,
  type ProblemDetails,
} from '../../shared/problem';
import { problemType, PROBLEM_TYPE_BASE, REQUEST_ID_HEADER, type ProblemKind } from '../../shared/protocol';
import type { CatalogModel } from '../catalog';
import type { ModelOutcome } from '../policy/describe';

export { PROBLEM_TYPE_BASE, type ProblemKind } from '../../shared/protocol';

/** Builds a problem document. */
export function problem(
  kind: ProblemKind,
  status: number,
  title: string,
  detail?: string,
  extra: Partial<ProblemDetails> = {},
): ProblemDetails {
  return { type: problemType(kind), title, status, ...(detail ? { detail } : {}), ...extra };
}

/** A 400 naming the request parameter the chosen model cannot honour (OpenAI's `param`). */
export function unsupportedParameterProblem(param: string, detail: string): ProblemDetails {
  return problem('unsupported-parameter', 400, 'Unsupported parameter', detail, {
    error: { message: detail, type: 'invalid_request_error', code: UNSUPPORTED_PARAMETER_CODE, param },
  });
}

/**
 * An error that is sent as a problem document as it is.
 *
 * Route handlers throw it; the gateway's error handler writes it.
 */
export class ProblemError extends Error {
  constructor(
    readonly problem: ProblemDetails,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(problem.detail ?? problem.title);
    this.name = 'ProblemError';
  }
}

/** The 403 for a denied model: the same text as the entitlement document's entry. */
export function accessDeniedProblem(model: CatalogModel, outcome: ModelOutcome, decisionId: string): ProblemDetails {
  return problem('access-denied', 403, outcome.title ?? 'Access denied', outcome.message, {
    instance: `/v1/models/${model.id}`,
    ...(outcome.reason ? { reason: outcome.reason } : {}),
    ...(outcome.policy ? { policy: outcome.policy } : {}),
    decisionId,
    ...(outcome.message ? { message: outcome.message } : {}),
    ...(outcome.remediation ? { remediation: outcome.remediation } : {}),
  });
}

/** OpenAI's error `type` for an HTTP status (what its SDKs and dashboards group errors by). */
export function apiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return status === 502 || status === 504 ? 'upstream_error' : 'server_error';
  return 'invalid_request_error';
}

/**
 * The problem with OpenAI's `error` object filled in, so one body serves both kinds of client.
 *
 * `code` is the reason code of a decision, else the code already set (OAuth errors), else the
 * problem kind (`model_not_found`, `upstream_error`…). The object also repeats the status, rule
 * and decision id: OpenAI SDKs hand a developer only this object (`err.error`), and give an
 * error inside a stream no status of its own. An `error` already present keeps its members.
 */
export function withApiError(body: ProblemDetails): ProblemDetails & { readonly error: ApiErrorObject } {
  const kind = body.type.startsWith(PROBLEM_TYPE_BASE) ? body.type.slice(PROBLEM_TYPE_BASE.length) : 'error';
  const error: ApiErrorObject = {
    message: body.message ?? body.detail ?? body.title,
    type: apiErrorType(body.status),
    param: null,
    ...body.error,
    code: body.reason ?? body.error?.code ?? kind.replace(/-/g, '_'),
    status: body.status,
    ...(body.policy ? { policy: body.policy } : {}),
    ...(body.decisionId ? { decisionId: body.decisionId } : {}),
  };
  return { ...body, error };
}

/**
 * Writes `body` with OpenAI's `error` object and `headers`.
 *
 * The media type is `application/problem+json` when the caller's `Accept` names it, otherwise
 * `application/json` (what OpenAI SDKs expect); the body is the same either way.
 */
export function sendProblem(
  reply: FastifyReply,
  body: ProblemDetails,
  headers: Readonly<Record<string, string>> = {},
): FastifyReply {
  const accept = reply.request?.headers.accept ?? '';
  const requestId = reply.getHeader(REQUEST_ID_HEADER);
  const document = withApiError({
    ...body,
    ...(typeof requestId === 'string' && !body.requestId ? { requestId } : {}),
  });
  return reply
    .code(body.status)
    .headers({ ...headers, 'cache-control': 'no-store' })
    .type(accept.includes(PROBLEM_CONTENT_TYPE) ? PROBLEM_CONTENT_TYPE : 'application/json; charset=utf-8')
    .send(JSON.stringify(document));
}

/**
 * The 404 for a model the caller may not know about.
 *
 * A hidden model and one that does not exist get this same answer (status, fields, wording),
 * each with the id of its own audit record, so the answer cannot confirm a hidden model exists.
 */
export function modelNotFoundProblem(modelId: string, decisionId: string): ProblemDetails {
  return problem('model-not-found', 404, 'Model not found', `There is no model "${modelId}".`, { decisionId });
}
