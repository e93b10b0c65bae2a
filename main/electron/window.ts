import { BrowserWindow, session, type WebContents } from 'electron';
import { RENDERER_CSP } from './csp';
import { join } from 'node:path';

/** Options for the one window factory. */
export interface MainWindowOptions {
  readonly preloadPath: string;
  readonly isDevelopment: boolean;
  /** Opens a URL in the system browser if the allow-list permits it (the app's one openExternal). */
  readonly openExternal: (url: string) => void;
}

/**
 * Denies permission requests (camera, notifications, geolocation, …) for every web contents.
 *
 * Signal and VS Code do the same: a chat page needs none of them.
 */
export function lockDownSession(): void {
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  // The page never needs to download through Chromium; exports go through main's save dialog.
  session.defaultSession.on('will-download', (event) => event.preventDefault());
  // Belt and braces: every response in the session carries the CSP, not only app:// ones.
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [RENDERER_CSP] } });
  });
}

function denyNavigation(contents: WebContents, openExternal: (url: string) => void): void {
  // The page is a single-page app: any navigation away from it is refused.
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  // window.open and target=_blank never make a window; allowed https links go to the system browser.
  contents.setWindowOpenHandler(({ url }) => {
    openExternal(url);
    return { action: 'deny' };
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

/**
 * Creates the app window with every security setting on; the only place a window is made.
 */
export function createMainWindow(options: MainWindowOptions): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Clearance',
    backgroundColor: '#0f1115',
    webPreferences: {
      preload: options.preloadPath,
      // The page runs in Chromium's OS-level sandbox: a renderer exploit gets no Node and no files.
      sandbox: true,
      // The preload's world is separate from the page's: the page sees only window.clearance.
      contextIsolation: true,
      // The page is a web page: no require, no process.
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      // Same-origin policy stays on.
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      // No <webview>: nothing may embed other content with other privileges.
      webviewTag: false,
      // DevTools only while developing.
      devTools: options.isDevelopment,
      navigateOnDragDrop: false,
      // Middle-click would open links in new windows, bypassing the window-open handler's intent.
      disableBlinkFeatures: 'Auxclick',
      spellcheck: true,
    },
  });
  denyNavigation(window.webContents, options.openExternal);
  window.once('ready-to-show', () => window.show());
  return window;
}

/** The path of the bundled preload next to the bundled main. */
export function preloadPathBeside(mainDir: string): string {
  return join(mainDir, '..', 'preload', 'index.cjs');
}
