import { IPC_PREFIX, ipcCalls, type IpcChannel, type IpcResult } from '../../shared/ipc';
import { dispatchIpc, type IpcHandlers } from './dispatch';

/** The part of an IPC invoke event the checks need (Electron's `IpcMainInvokeEvent`). */
export interface IpcInvokeEventLike {
  readonly senderFrame: { readonly url: string } | null;
}

/** The part of Electron's `ipcMain` registration uses, so it can run under Vitest with a fake. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcInvokeEventLike, payload: unknown) => Promise<unknown>): void;
  removeHandler(channel: string): void;
}

/** The origin the renderer is served from inside Electron. */
export const APP_ORIGIN = 'app://clearance';

/**
 * True when a frame URL belongs to the app's own page (GitHub Desktop's trusted-ipc-sender check).
 */
export function isTrustedSender(frameUrl: string | undefined, origin: string = APP_ORIGIN): boolean {
  if (!frameUrl) return false;
  try {
    const url = new URL(frameUrl);
    return `${url.protocol}//${url.host}` === origin;
  } catch {
    return false;
  }
}

/**
 * Registers one `ipcMain.handle` per call in the contract; each rejects unknown senders and parses
 * its payload before any service sees it. Returns a function that removes them.
 */
export function registerIpcHandlers(
  ipcMain: IpcMainLike,
  handlers: IpcHandlers,
  options: { readonly trustedOrigin?: string; readonly log?: (message: string, error?: unknown) => void } = {},
): () => void {
  const channels = Object.keys(ipcCalls) as IpcChannel[];
  for (const channel of channels) {
    ipcMain.handle(IPC_PREFIX + channel, async (event, payload): Promise<IpcResult<unknown>> => {
      if (!isTrustedSender(event.senderFrame?.url, options.trustedOrigin)) {
        options.log?.(`Refused IPC ${channel} from untrusted frame ${event.senderFrame?.url ?? '(none)'}`);
        return {
          ok: false,
          error: { code: 'FORBIDDEN_SENDER', message: 'This call is only answered for the Clearance window.' },
        };
      }
      return dispatchIpc(handlers, channel, payload, options.log);
    });
  }
  return () => channels.forEach((channel) => ipcMain.removeHandler(IPC_PREFIX + channel));
}
