import { app, BrowserWindow, dialog, ipcMain } from 'electron';
import log from 'electron-log/main';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IPC_PREFIX } from '../../shared/ipc';
import { managedPolicyPath, readManagedConfig } from '../config/managed';
import { registerIpcHandlers } from '../ipc/register';
import { createServices } from '../services';
import { createElectronAdapters } from './adapters';
import { registerAppScheme, serveRenderer } from './protocol';
import { createMainWindow, lockDownSession, preloadPathBeside } from './window';

/**
 * The Electron entry: hardens the app, builds the services from Electron adapters, opens the window.
 */
const isDevelopment = !app.isPackaged;

// Every renderer is sandboxed, whatever a window's own options say.
app.enableSandbox();
registerAppScheme();
log.initialize();

if (!app.requestSingleInstanceLock()) {
  app.quit();
}

let mainWindow: BrowserWindow | undefined;

async function main(): Promise<void> {
  await app.whenReady();
  lockDownSession();
  serveRenderer(join(__dirname, '..', 'renderer'));

  const managed = await readManagedConfig(managedPolicyPath(process.platform, process.env));
  if (managed.error) log.warn(managed.error);
  const gatewayUrl = managed.config.gatewayUrl ?? (isDevelopment ? process.env.CLEARANCE_GATEWAY_URL : undefined);
  if (!gatewayUrl) {
    dialog.showErrorBox(
      'Clearance is not configured',
      `No gateway URL is set. IT sets it in ${managedPolicyPath(process.platform, process.env)} (see docs/it-deployment.md).`,
    );
    app.quit();
    return;
  }
  // The development identity provider's own CA; honoured only in development builds.
  const caFile = isDevelopment ? process.env.CLEARANCE_DEV_CA_FILE : undefined;

  const services = createServices(
    createElectronAdapters(() => mainWindow),
    {
      gatewayUrl,
      appVersion: app.getVersion(),
      shell: 'electron',
      platform: process.platform,
      packaged: app.isPackaged,
      argv: process.argv,
      env: process.env,
      managed,
      idpCaCertPem: caFile ? readFileSync(caFile, 'utf8') : undefined,
      log: (message, error) => (error ? log.error(message, error) : log.info(message)),
    },
  );
  registerIpcHandlers(ipcMain, services.handlers, { log: (message, error) => log.warn(message, error ?? '') });
  services.onEvent((event, payload) => mainWindow?.webContents.send(`${IPC_PREFIX}event:${event}`, payload));

  mainWindow = createMainWindow({
    preloadPath: preloadPathBeside(__dirname),
    isDevelopment,
    openExternal: (url) => void services.handlers.openExternal({ url }),
  });
  mainWindow.on('closed', () => (mainWindow = undefined));
  await mainWindow.loadURL('app://clearance/index.html');
  void services.start();

  app.on('before-quit', () => void services.dispose());
}

app.on('window-all-closed', () => app.quit());
main().catch((error: unknown) => {
  log.error('Clearance failed to start', error);
  dialog.showErrorBox('Clearance failed to start', error instanceof Error ? error.message : String(error));
  app.quit();
});
