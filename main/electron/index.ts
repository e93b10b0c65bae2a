import { app, BrowserWindow, dialog, ipcMain, session } from 'electron';
import log from 'electron-log/node';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { IPC_PREFIX } from '../../shared/ipc';
import { readManagedPolicy, resolveStartupSettings } from '../config/managed';
import { spellCheckerSettings } from '../config/spellcheck';
import { fuseBinaryPath, readFuseWire } from '../device/posture/fuses';
import { registerIpcHandlers } from '../ipc/register';
import { createServices } from '../services';
import { createElectronAdapters } from './adapters';
import { chooseClientCertificate } from './clientCertificate';
import { registerAppScheme, serveRenderer } from './protocol';
import { createPlatformUpdater } from './updater';
import { installAppMenu } from './menu';
import { createMainWindow, lockDownSession, preloadPathBeside } from './window';

/**
 * The Electron entry: hardens the app, builds the services from Electron adapters, opens the window.
 */
const isDevelopment = !app.isPackaged;

// Every renderer is sandboxed, whatever a window's own options say.
app.enableSandbox();
registerAppScheme();
// electron-log in this process only: its Node flavour writes the file and registers no IPC channel
// and no preload (electron-log/main's initialize() would add both). The page's errors arrive through
// the contract's reportRendererError call.
log.transports.file.resolvePathFn = () => join(app.getPath('logs'), 'main.log');

if (!app.requestSingleInstanceLock()) {
  app.quit();
}

let mainWindow: BrowserWindow | undefined;

async function main(): Promise<void> {
  await app.whenReady();
  lockDownSession();
  serveRenderer(join(__dirname, '..', 'renderer'));

  const adapters = createElectronAdapters(() => mainWindow);
  const managed = await readManagedPolicy({
    platform: process.platform,
    commands: adapters.commands,
    userName: (() => {
      try {
        return userInfo().username;
      } catch {
        return undefined;
      }
    })(),
  });
  for (const problem of managed.view.problems) {
    log.error(`Managed configuration: ${problem.key ?? problem.location}: ${problem.message}`);
  }
  // A packaged app takes nothing from the environment; development builds may name the gateway and its CA.
  const spelling = spellCheckerSettings(managed);
  session.defaultSession.setSpellCheckerEnabled(spelling.enabled);
  if (spelling.dictionaryUrl) session.defaultSession.setSpellCheckerDictionaryDownloadURL(spelling.dictionaryUrl);
  const startup = resolveStartupSettings(managed, app.isPackaged, process.env);
  // Invalid managed configuration still opens the window: it shows which key is wrong and whom to contact.
  if (!startup.gatewayUrl && managed.view.state !== 'invalid') {
    dialog.showErrorBox(
      'Clearance is not configured',
      'No gateway URL is set. IT sets gatewayUrl in the managed settings (see docs/it-deployment.md).',
    );
    app.quit();
    return;
  }
  const caFile = startup.developmentCaFile;

  // Mutual TLS with a managed-device certificate: only the main process's calls to the gateway get
  // one, from IT's issuer when named (Electron's default would give the first to any site that asks).
  app.on('select-client-certificate', (event, webContents, url, list, callback) => {
    event.preventDefault();
    const choice = chooseClientCertificate({ url, fromPage: webContents !== null }, list, {
      gatewayUrl: startup.gatewayUrl,
      issuer: managed.config.deviceCertificateIssuer,
      now: Date.now(),
    });
    log.info(`Client certificate for ${url}: ${choice.why}`);
    callback(choice.certificate);
  });

  // What the app-integrity check can observe of the fuses: read back from this very executable.
  const fuses = app.isPackaged ? await readFuseWire(fuseBinaryPath(process.platform, process.execPath)) : undefined;

  const services = createServices(adapters, {
    gatewayUrl: startup.gatewayUrl ?? '',
    appVersion: app.getVersion(),
    shell: 'electron',
    platform: process.platform,
    packaged: app.isPackaged,
    ...(fuses ? { fuses } : {}),
    argv: process.argv,
    env: process.env,
    managed,
    idpCaCertPem: caFile ? readFileSync(caFile, 'utf8') : undefined,
    log: (message, error) => (error ? log.error(message, error) : log.info(message)),
    // electron-updater under IT's updatePolicy; nothing is created in a development build.
    updater: createPlatformUpdater(app.isPackaged, {
      info: (message) => log.info(`[updater] ${message}`),
      warn: (message) => log.warn(`[updater] ${message}`),
      error: (message) => log.error(`[updater] ${message}`),
    }),
  });
  registerIpcHandlers(ipcMain, services.handlers, { log: (message, error) => log.warn(message, error ?? '') });
  services.onEvent((event, payload) => mainWindow?.webContents.send(`${IPC_PREFIX}event:${event}`, payload));

  installAppMenu({
    services,
    window: () => mainWindow,
    isDevelopment,
    gatewayUrl: startup.gatewayUrl ?? '',
    openInBrowser: (url) => adapters.browser.open(url),
    log: (message, error) => log.error(message, error),
  });

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
