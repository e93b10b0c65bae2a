import { DecisionReason } from '../../shared/reasons';
import type { IpcError, IpcErrorCode } from '../../shared/ipc';

/**
 * A gateway session could not be made or used; `code` is what the renderer switches on and
 * `message` says what the person can do.
 */
export class GatewaySessionError extends Error {
  constructor(
    readonly code: IpcErrorCode,
    message: string,
    readonly details: { readonly reason?: DecisionReason; readonly status?: number; readonly cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'GatewaySessionError';
  }

  /** The error as an IPC answer carries it. */
  toIpcError(): IpcError {
    return { code: this.code, message: this.message, ...(this.details.reason ? { reason: this.details.reason } : {}) };
  }
}

/** What an error body says, read leniently (RFC 9457 problem or OAuth `error` JSON); never throws. */
export interface ErrorBody {
  readonly said?: string;
  readonly error?: string;
  readonly reason?: DecisionReason;
}

/** Reads an error body if it is JSON; never throws. */
export async function readErrorBody(response: Response): Promise<ErrorBody> {
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('json')) return {};
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = await response.clone().json();
    if (typeof parsed !== 'object' || parsed === null) return {};
    body = parsed as Record<string, unknown>;
  } catch {
    return {};
  }
  const text = (key: string) => (typeof body[key] === 'string' && body[key] !== '' ? (body[key] as string) : undefined);
  const reason = DecisionReason.safeParse(body.reason);
  // The gateway's `error` is OpenAI's error object whose `code` is the OAuth error; older ones sent a string.
  const nested = typeof body.error === 'object' && body.error !== null ? (body.error as { code?: unknown }) : {};
  return {
    said: text('message') ?? text('detail') ?? text('error_description') ?? text('title'),
    error: text('error') ?? (typeof nested.code === 'string' && nested.code !== '' ? nested.code : undefined),
    reason: reason.success ? reason.data : undefined,
  };
}

/** The OAuth `error` of a `WWW-Authenticate: DPoP …` (or Bearer) challenge. */
export function challengeError(response: Response): string | undefined {
  const header = response.headers.get('www-authenticate') ?? '';
  return /\berror="([^"]*)"/.exec(header)?.[1];
}

/**
 * Turns a refused attestation or session request into an error a person can act on.
 */
export async function sessionErrorFromResponse(
  response: Response,
  what: string,
  origin: string,
): Promise<GatewaySessionError> {
  const problem = await readErrorBody(response);
  const error = challengeError(response) ?? problem.error;
  const said = problem.said;
  const status = response.status;
  if (status === 401 && error === 'invalid_dpop_proof') {
    return new GatewaySessionError(
      'INTERNAL',
      `The gateway did not accept this device’s proof of key possession${said ? ` (${said})` : ''}. Make sure the computer’s clock is set automatically, then try again.`,
      { status },
    );
  }
  if (status === 401) {
    return new GatewaySessionError(
      'NOT_SIGNED_IN',
      `The gateway did not accept your sign-in${said ? ` (${said})` : ''}. Sign in again.`,
      { status },
    );
  }
  if (status === 403) {
    return new GatewaySessionError(
      'DEVICE_BLOCKED',
      said
        ? `The gateway refused this device: ${said}`
        : 'The gateway refused this device. Open the device screen to see what to fix.',
      { status, reason: problem.reason },
    );
  }
  if (status === 400 || status === 422) {
    return new GatewaySessionError(
      'INTERNAL',
      `The gateway could not accept ${what}${said ? `: ${said}` : ''}. Check again; if it keeps happening, send IT a diagnostics bundle.`,
      { status },
    );
  }
  return new GatewaySessionError(
    'GATEWAY_UNAVAILABLE',
    `The gateway at ${origin} answered ${status}${said ? ` (${said})` : ''} to ${what}. Try again in a moment.`,
    { status },
  );
}
