// Preloaded (`node --require`) before a built main bundle: answers `require('electron')` with a fake
// that records every IPC channel, preload and session hook the bundle registers, then prints them as
// one JSON line once the window has loaded. Used by scripts/main-bundle.test.ts; never shipped.
'use strict';
const Module = process.getBuiltinModule('node:module');
const { join } = process.getBuiltinModule('node:path');

const record = { ipc: [], preloads: [], sessionPreloads: [], windows: 0, loaded: [], errors: [] };
const noop = () => {};
/** Any property is a callable fake (or the override given), so code paths not listed here still run. */
function fake(overrides = {}) {
  return new Proxy(
    Object.assign(function () {}, overrides),
    {
      get(target, key) {
        if (key in target) return target[key];
        if (key === 'then') return undefined;
        return fake();
      },
      apply() {
        return fake();
      },
    },
  );
}

const dir = process.env.RECORDING_ELECTRON_DIR;
const session = fake({
  setPreloads: (paths) => record.sessionPreloads.push(...paths),
  registerPreloadScript: (script) => record.sessionPreloads.push(script.filePath ?? String(script)),
  setPermissionRequestHandler: noop,
  setPermissionCheckHandler: noop,
  on: noop,
  webRequest: fake({ onHeadersReceived: noop }),
});
const ipcMain = fake({
  handle: (channel) => record.ipc.push(['handle', channel]),
  handleOnce: (channel) => record.ipc.push(['handleOnce', channel]),
  on: (channel) => record.ipc.push(['on', channel]),
  once: (channel) => record.ipc.push(['once', channel]),
  addListener: (channel) => record.ipc.push(['on', channel]),
  removeHandler: noop,
});
class BrowserWindow {
  constructor(options) {
    record.windows += 1;
    if (options?.webPreferences?.preload) record.preloads.push(options.webPreferences.preload);
    this.webContents = fake({ on: noop, once: noop, setWindowOpenHandler: noop, send: noop, session });
  }
  on() {}
  once() {}
  show() {}
  async loadURL(url) {
    record.loaded.push(url);
    setTimeout(() => {
      process.stdout.write(`RECORDING ${JSON.stringify(record)}\n`);
      process.exit(0);
    }, 300);
  }
  static getAllWindows() {
    return [];
  }
}
const electron = {
  app: fake({
    isPackaged: process.env.RECORDING_ELECTRON_PACKAGED === '1',
    enableSandbox: noop,
    requestSingleInstanceLock: () => true,
    whenReady: () => Promise.resolve(),
    getPath: (name) => join(dir, name),
    getVersion: () => '0.1.0',
    getName: () => 'Clearance',
    on: noop,
    once: noop,
    quit: () => {
      process.stdout.write(`RECORDING ${JSON.stringify({ ...record, quit: true })}\n`);
      process.exit(0);
    },
  }),
  BrowserWindow,
  ipcMain,
  session: fake({ defaultSession: session }),
  protocol: fake({ registerSchemesAsPrivileged: noop, handle: noop }),
  dialog: fake({ showErrorBox: (title, text) => record.errors.push(`${title}: ${text}`) }),
  net: fake({ fetch: () => Promise.reject(new Error('offline')) }),
  safeStorage: fake({ isEncryptionAvailable: () => true, getSelectedStorageBackend: () => 'gnome_libsecret' }),
  shell: fake({ openExternal: () => Promise.resolve() }),
  Menu: fake({ setApplicationMenu: noop, buildFromTemplate: () => fake() }),
  MenuItem: fake(),
  contextBridge: fake({ exposeInMainWorld: (key, api) => (globalThis[key] = api) }),
  ipcRenderer: fake(),
};

const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === 'electron') return electron;
  return load.call(this, request, parent, isMain);
};
