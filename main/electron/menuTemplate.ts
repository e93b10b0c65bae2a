/**
 * A menu item in the shape Electron's `Menu.buildFromTemplate` takes (the fields the app uses), so the
 * menu is decided here in plain TypeScript and tested without Electron.
 */
export interface MenuItemSpec {
  readonly label?: string;
  readonly role?:
    | 'appMenu'
    | 'about'
    | 'hide'
    | 'hideOthers'
    | 'unhide'
    | 'quit'
    | 'undo'
    | 'redo'
    | 'cut'
    | 'copy'
    | 'paste'
    | 'pasteAndMatchStyle'
    | 'delete'
    | 'selectAll'
    | 'reload'
    | 'toggleDevTools'
    | 'resetZoom'
    | 'zoomIn'
    | 'zoomOut'
    | 'togglefullscreen'
    | 'minimize'
    | 'close'
    | 'zoom'
    | 'front'
    | 'services';
  readonly type?: 'separator' | 'submenu';
  readonly accelerator?: string;
  readonly enabled?: boolean;
  readonly submenu?: readonly MenuItemSpec[];
  readonly click?: () => void;
}

/** What the menu's own items do; the Electron shell supplies them. */
export interface AppMenuActions {
  exportDiagnostics(): void;
  openDocumentation(): void;
  showSupportContact(): void;
  showAbout(): void;
  checkForUpdates(): void;
}

/** What the menu shows besides its actions. */
export interface AppMenuOptions {
  readonly platform: NodeJS.Platform;
  readonly isDevelopment: boolean;
  /** Whether the in-app updater may check now (IT's updatePolicy is notify or auto, with a feed). */
  readonly canCheckForUpdates: boolean;
  readonly actions: AppMenuActions;
}

const separator: MenuItemSpec = { type: 'separator' };

/**
 * The application menu: the platform's standard edit, view and window menus, and a Help menu with
 * the diagnostics bundle for IT, the documentation, whom to contact, updates and About.
 *
 * DevTools and reload appear only in a development build, as the window factory allows them only there.
 */
export function appMenuTemplate(options: AppMenuOptions): MenuItemSpec[] {
  const { actions } = options;
  const mac = options.platform === 'darwin';
  const help: MenuItemSpec = {
    label: 'Help',
    submenu: [
      { label: 'Export Diagnostics…', click: () => actions.exportDiagnostics() },
      { label: 'Clearance Documentation', click: () => actions.openDocumentation() },
      { label: 'Contact Support', click: () => actions.showSupportContact() },
      separator,
      { label: 'Check for Updates…', enabled: options.canCheckForUpdates, click: () => actions.checkForUpdates() },
      ...(mac ? [] : [separator, { label: 'About Clearance', click: () => actions.showAbout() }]),
    ],
  };
  const edit: MenuItemSpec = {
    label: 'Edit',
    submenu: [
      { role: 'undo' },
      { role: 'redo' },
      separator,
      { role: 'cut' },
      { role: 'copy' },
      { role: 'paste' },
      ...(mac ? [{ role: 'pasteAndMatchStyle' } as const] : []),
      { role: 'delete' },
      separator,
      { role: 'selectAll' },
    ],
  };
  const view: MenuItemSpec = {
    label: 'View',
    submenu: [
      ...(options.isDevelopment ? [{ role: 'reload' } as const, { role: 'toggleDevTools' } as const, separator] : []),
      { role: 'resetZoom' },
      { role: 'zoomIn' },
      { role: 'zoomOut' },
      separator,
      { role: 'togglefullscreen' },
    ],
  };
  const window: MenuItemSpec = {
    label: 'Window',
    submenu: mac
      ? [{ role: 'minimize' }, { role: 'zoom' }, separator, { role: 'front' }]
      : [{ role: 'minimize' }, { role: 'close' }],
  };
  const appMenu: MenuItemSpec = {
    label: 'Clearance',
    submenu: [
      { label: 'About Clearance', click: () => actions.showAbout() },
      separator,
      { role: 'services' },
      separator,
      { role: 'hide' },
      { role: 'hideOthers' },
      { role: 'unhide' },
      separator,
      { role: 'quit' },
    ],
  };
  const file: MenuItemSpec = { label: 'File', submenu: [{ role: 'quit', label: 'Quit' }] };
  return mac ? [appMenu, edit, view, window, help] : [file, edit, view, window, help];
}

/** What About shows: the versions IT asks for, one per line. */
export function aboutText(facts: {
  readonly version: string;
  readonly electron?: string;
  readonly chrome?: string;
  readonly node?: string;
  readonly gatewayUrl: string;
  readonly update: string;
}): string {
  return [
    `Version ${facts.version}`,
    ...(facts.electron ? [`Electron ${facts.electron}`] : []),
    ...(facts.chrome ? [`Chromium ${facts.chrome}`] : []),
    ...(facts.node ? [`Node.js ${facts.node}`] : []),
    `Gateway: ${facts.gatewayUrl || 'not configured'}`,
    `Updates: ${facts.update}`,
  ].join('\n');
}

/** What Contact Support says, with or without a contact from IT or the gateway. */
export function supportText(contact: string | undefined): { readonly message: string; readonly detail: string } {
  return contact
    ? {
        message: `Contact ${contact}`,
        detail:
          'When you ask for help, attach a diagnostics bundle (Help › Export Diagnostics…). It holds no tokens, keys or message text.',
      }
    : {
        message: 'Contact your IT help desk',
        detail:
          'Your organisation has not named a support contact. When you ask for help, attach a diagnostics bundle (Help › Export Diagnostics…).',
      };
}
