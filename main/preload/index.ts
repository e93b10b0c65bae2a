import { contextBridge, ipcRenderer } from 'electron';
import { buildClearanceApi, IPC_PREFIX } from '../../shared/ipc';

/**
 * The preload: exposes `window.clearance`, built from the contract, and nothing else.
 *
 * Only named calls and the contract's event names cross; `ipcRenderer` itself never does.
 */
const api = buildClearanceApi({
  invoke: (channel, request) => ipcRenderer.invoke(IPC_PREFIX + channel, request),
  subscribe: (event, listener) => {
    const channel = `${IPC_PREFIX}event:${event}`;
    const forward = (_event: Electron.IpcRendererEvent, payload: unknown) => listener(payload);
    ipcRenderer.on(channel, forward);
    return () => {
      ipcRenderer.removeListener(channel, forward);
    };
  },
});

contextBridge.exposeInMainWorld('clearance', api);
