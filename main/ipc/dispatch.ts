import type { z } from 'zod';
import {
  ipcCalls,
  type IpcChannel,
  type IpcError,
  type IpcErrorCode,
  type IpcResponse,
  type IpcResult,
} from '../../shared/ipc';

/** The service function behind each IPC call, typed from the contract. */
export type IpcHandlers = {
  readonly [C in IpcChannel]: (request: z.output<(typeof ipcCalls)[C]['request']>) => Promise<IpcResponse<C>>;
};

/**
 * An error a service throws when the renderer should see a specific code and message.
 */
export class IpcFailure extends Error {
  readonly error: IpcError;

  constructor(code: IpcErrorCode, message: string, extra?: Omit<IpcError, 'code' | 'message'>) {
    super(message);
    this.name = 'IpcFailure';
    this.error = { code, message, ...extra };
  }
}

/** True when `channel` names a call in the contract (own keys only: `__proto__` is not a call). */
export function isIpcChannel(channel: unknown): channel is IpcChannel {
  return typeof channel === 'string' && Object.hasOwn(ipcCalls, channel);
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(request)'}: ${issue.message}`);
}

/**
 * Runs one IPC call: checks the channel, parses the payload with the contract's schema, calls the
 * handler, and parses the answer too so nothing outside the contract (a key, a token) can leave main.
 *
 * Never throws: every failure comes back as an `IpcError` value.
 */
export async function dispatchIpc(
  handlers: IpcHandlers,
  channel: unknown,
  payload: unknown,
  log: (message: string, error?: unknown) => void = console.error,
): Promise<IpcResult<unknown>> {
  if (!isIpcChannel(channel)) {
    return { ok: false, error: { code: 'UNKNOWN_CHANNEL', message: `There is no call named "${String(channel)}".` } };
  }
  const schema = ipcCalls[channel];
  const request = schema.request.safeParse(payload === undefined ? {} : payload);
  if (!request.success) {
    return {
      ok: false,
      error: {
        code: 'BAD_REQUEST',
        message: `The request to ${channel} was not valid.`,
        issues: describeIssues(request.error.issues),
      },
    };
  }
  try {
    const handler = handlers[channel] as (request: unknown) => Promise<unknown>;
    const value = await handler(request.data);
    const response = schema.response.safeParse(value);
    if (!response.success) {
      log(`IPC ${channel} answered outside the contract: ${describeIssues(response.error.issues).join('; ')}`);
      return {
        ok: false,
        error: { code: 'INTERNAL', message: 'Clearance produced an answer it could not check. Try again.' },
      };
    }
    return { ok: true, value: response.data };
  } catch (error) {
    if (error instanceof IpcFailure) return { ok: false, error: error.error };
    log(`IPC ${channel} failed`, error);
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, error: { code: 'INTERNAL', message: `Something went wrong: ${detail}` } };
  }
}
