import type { FastifyReply } from 'fastify';
import { PROBLEM_CONTENT_TYPE, type ProblemDetails } from '../../shared/problem';
import { problemType, type ProblemKind } from '../../shared/protocol';
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

/** Writes `body` as `application/problem+json` with `headers`. */
export function sendProblem(
  reply: FastifyReply,
  body: ProblemDetails,
  headers: Readonly<Record<string, string>> = {},
): FastifyReply {
  return reply
    .code(body.status)
    .headers({ ...headers, 'cache-control': 'no-store' })
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(body));
}
