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
  const policy = reason.success ? text(fields.policy)?.slice(0, 200) : undefined;
  return {
    error: reason.success ? { ...error, reason: reason.data, ...(policy ? { policy } : {}) } : error,
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

/** What the plain sentence of an error of each code says, when the original names addresses or error codes. */
const PLAIN_MESSAGES: Partial<Record<IpcErrorCode, string>> = {
  GATEWAY_UNAVAILABLE: 'Clearance lost its connection to the gateway. Try again once it is back.',
  NOT_SIGNED_IN: 'Your session with the gateway has ended. Sign in again.',
  INTERNAL: 'Something went wrong while getting this reply. Try again.',
};

/** Technical words a person should not have to read: URLs, host:port, errno codes, socket jargon. */
const TECHNICAL =
  /https?:\/\/|\b(?:localhost|\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?\b|other side closed|socket|fetch failed|\bundici\b/i;
/** Node's error codes (`ECONNREFUSED`, `ETIMEDOUT`…): upper case only, so ordinary words never match. */
const ERRNO = /\bE[A-Z]{3,}\b/;

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause ?? '');
  const inner = cause.cause as { code?: unknown; message?: unknown } | undefined;
  const innerText = [inner?.code, inner?.message].filter((part) => typeof part === 'string' && part).join(': ');
  return innerText ? `${cause.message} (${innerText})` : cause.message;
}

/**
 * The error shown when the connection to the gateway fails or drops mid-reply.
 *
 * It says only what went wrong, in plain words; what the network layer said goes to `detail`
 * (the "Details" disclosure and the log). The page adds that the partial reply was kept when there
 * is one (the connection can also fail before any text arrived).
 */
export function connectionLostError(cause: unknown): IpcError {
  const detail = describeCause(cause);
  return {
    code: 'GATEWAY_UNAVAILABLE',
    message: PLAIN_MESSAGES.GATEWAY_UNAVAILABLE ?? '',
    ...(detail ? { detail } : {}),
  };
}

/**
 * The same error with a plain sentence when its message names URLs, ports or error codes.
 *
 * The original words move to `detail`, so nothing is lost for the log or for IT.
 */
export function plainError(error: IpcError): IpcError {
  if (!TECHNICAL.test(error.message) && !ERRNO.test(error.message)) return error;
  const message = PLAIN_MESSAGES[error.code] ?? PLAIN_MESSAGES.INTERNAL ?? error.message;
  const detail = error.detail ? `${error.message}\n${error.detail}` : error.message;
  return { ...error, message, detail: detail.slice(0, 2000) };
}
