import { app, clipboard, dialog, Menu, type BrowserWindow, type MenuItemConstructorOptions } from 'electron';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClearanceServices } from '../services';
import { aboutText, appMenuTemplate, supportText } from './menuTemplate';

/** What the menu needs from the running app. */
export interface AppMenuContext {
  readonly services: ClearanceServices;
  readonly window: () => BrowserWindow | undefined;
  readonly isDevelopment: boolean;
  readonly gatewayUrl: string;
  /** Opens an https page in the system browser (the adapters' browser). */
  readonly openInBrowser: (url: string) => Promise<void>;
  readonly log: (message: string, error?: unknown) => void;
}

/** The documentation's address: the `homepage` of the packaged package.json (https), if any. */
function documentationUrl(): string | undefined {
  try {
    const { homepage } = JSON.parse(readFileSync(join(app.getAppPath(), 'package.json'), 'utf8')) as {
      homepage?: unknown;
    };
    return typeof homepage === 'string' && homepage.startsWith('https://') ? homepage : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Installs the native application menu (appMenuTemplate) and wires its Help items to the services.
 */
export function installAppMenu(context: AppMenuContext): void {
  const { services } = context;
  const show = (options: Electron.MessageBoxOptions) => {
    const window = context.window();
    return window ? dialog.showMessageBox(window, options) : dialog.showMessageBox(options);
  };
  const template = appMenuTemplate({
    platform: process.platform,
    isDevelopment: context.isDevelopment,
    canCheckForUpdates: services.update.status.canUpdate,
    actions: {
      exportDiagnostics: () => {
        void services.handlers.exportDiagnostics({}).then(
          ({ savedTo }) => {
            if (savedTo)
              void show({ type: 'info', message: 'Diagnostics saved', detail: `${savedTo}\n\nSend this file to IT.` });
          },
          (error: unknown) => {
            context.log('Diagnostics could not be exported', error);
            dialog.showErrorBox(
              'Diagnostics could not be exported',
              error instanceof Error ? error.message : String(error),
            );
          },
        );
      },
      openDocumentation: () => {
        const url = documentationUrl();
        if (url) void context.openInBrowser(url);
        else void show({ type: 'info', message: 'See the documentation your IT department provides.' });
      },
      showSupportContact: () => {
        const contact = services.access.supportContact;
        const text = supportText(contact);
        void show({
          type: 'info',
          message: text.message,
          detail: text.detail,
          buttons: contact ? ['Copy contact', 'Close'] : ['Close'],
          defaultId: contact ? 1 : 0,
          cancelId: contact ? 1 : 0,
        }).then(({ response }) => {
          if (contact && response === 0) clipboard.writeText(contact);
        });
      },
      showAbout: () => {
        const update = services.update.status;
        void show({
          type: 'info',
          message: `Clearance ${app.getVersion()}`,
          detail: aboutText({
            version: app.getVersion(),
            electron: process.versions.electron,
            chrome: process.versions.chrome,
            node: process.versions.node,
            gatewayUrl: context.gatewayUrl,
            update:
              update.state === 'disabled'
                ? `off — ${update.message ?? ''}`
                : `${update.policy} (${update.channel ?? 'latest'})`,
          }),
        });
      },
      checkForUpdates: () => {
        void services.update.check().then((status) => {
          if (status.state === 'up-to-date') {
            void show({ type: 'info', message: `Clearance ${status.currentVersion} is the latest version.` });
          } else if (status.state === 'error' && status.message) {
            void show({ type: 'warning', message: 'Clearance could not update', detail: status.message });
          }
        });
      },
    },
  });
  Menu.setApplicationMenu(Menu.buildFromTemplate(template as MenuItemConstructorOptions[]));
}
