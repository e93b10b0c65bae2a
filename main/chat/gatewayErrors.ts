import type { IpcError, IpcErrorCode } from '../../shared/ipc';
import { PROBLEM_CONTENT_TYPE } from '../../shared/problem';
import { DecisionReason } from '../../shared/reasons';

/** An error the gateway reported, as the renderer shows it, with the audit record it names. */
export interface GatewayError {
  readonly error: IpcError;
  readonly decisionId?: string;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim().length > 0 ? value : undefined;
}

function codeFor(status: number | undefined, hasReason: boolean): IpcErrorCode {
  if (hasReason || status === 403) return 'MODEL_DENIED';
  if (status === 401) return 'NOT_SIGNED_IN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 400 || status === 413 || status === 422) return 'BAD_REQUEST';
  return 'GATEWAY_UNAVAILABLE';
}

function fallbackMessage(status: number | undefined): string {
  if (status === 401) return 'Your session with the gateway has ended. Sign in again.';
  if (status === 403) return 'The gateway refused this request.';
  if (status === 429) return 'The gateway is busy. Try again in a moment.';
  if (status !== undefined && status < 500) return `The gateway could not take this request (HTTP ${status}).`;
  return 'The gateway could not finish this reply. Try again.';
}

/**
 * Reads an RFC 9457 problem (or the `error` object of an OpenAI-style error chunk) into an error.
 *
 * Lenient on purpose: a problem with unknown extra fields or a missing `type` still yields its
 * reason and message, and an unknown `reason` code is dropped rather than passed on.
 */
export function errorFromProblem(problem: unknown, status?: number): GatewayError {
  const fields = (typeof problem === 'object' && problem !== null ? problem : {}) as Record<string, unknown>;
  const reason = DecisionReason.safeParse(fields.reason);
  const effectiveStatus = typeof fields.status === 'number' ? fields.status : status;
  const message = text(fields.message) ?? text(fields.detail) ?? text(fields.title) ?? fallbackMessage(effectiveStatus);
  const error: IpcError = { code: codeFor(effectiveStatus, reason.success), message };
  const decisionId = text(fields.decisionId);
  return {
    error: reason.success ? { ...error, reason: reason.data } : error,
    ...(decisionId ? { decisionId } : {}),
  };
}

/** The error a failed (non-2xx) gateway response carries, from its problem body when it has one. */
export async function errorFromResponse(response: Response): Promise<GatewayError> {
  const type = response.headers.get('content-type') ?? '';
  if (type.includes(PROBLEM_CONTENT_TYPE) || type.includes('application/json')) {
    try {
      return errorFromProblem(await response.json(), response.status);
    } catch {
      // A body that is not JSON says nothing more than the status does.
    }
  } else {
    await response.body?.cancel().catch(() => {});
  }
  return errorFromProblem(undefined, response.status);
}

/**
 * The error shown when the connection to the gateway fails or drops mid-reply.
 *
 * It says only what went wrong: the page adds that the partial reply was kept when there is one
 * (the connection can also fail before any text arrived).
 */
export function connectionLostError(cause: unknown): IpcError {
  const detail = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : '';
  return {
    code: 'GATEWAY_UNAVAILABLE',
    message: `The connection to the gateway was lost${detail ? ` (${detail})` : ''}. Try again once it is back.`,
  };
}
