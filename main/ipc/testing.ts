import type { IpcInvokeEventLike, IpcMainLike } from './register';

type Listener = (event: IpcInvokeEventLike, payload: unknown) => Promise<unknown>;

/**
 * An `ipcMain` stand-in for tests: records handlers and invokes them with a chosen sender frame.
 */
export class FakeIpcMain implements IpcMainLike {
  readonly listeners = new Map<string, Listener>();

  handle(channel: string, listener: Listener): void {
    this.listeners.set(channel, listener);
  }

  removeHandler(channel: string): void {
    this.listeners.delete(channel);
  }

  /** Invokes a registered channel (full name, prefix included) as the given frame would. */
  invokeRaw(channel: string, payload: unknown, frameUrl: string | null = 'app://clearance/index.html') {
    const listener = this.listeners.get(channel);
    if (!listener) throw new Error(`no handler for ${channel}`);
    return listener({ senderFrame: frameUrl === null ? null : { url: frameUrl } }, payload);
  }
}
