import { describe, expect, it, vi } from 'vitest';
import { aboutText, appMenuTemplate, supportText, type MenuItemSpec } from './menuTemplate';

function actions() {
  return {
    exportDiagnostics: vi.fn(),
    openDocumentation: vi.fn(),
    showSupportContact: vi.fn(),
    showAbout: vi.fn(),
    checkForUpdates: vi.fn(),
  };
}

function find(items: readonly MenuItemSpec[], label: string): MenuItemSpec | undefined {
  for (const item of items) {
    if (item.label === label) return item;
    const inside = item.submenu ? find(item.submenu, label) : undefined;
    if (inside) return inside;
  }
  return undefined;
}

function roles(items: readonly MenuItemSpec[]): string[] {
  return items.flatMap((item) => [...(item.role ? [item.role] : []), ...(item.submenu ? roles(item.submenu) : [])]);
}

describe('appMenuTemplate', () => {
  it('has a Help menu whose items export diagnostics, open the docs, show the contact, check for updates and show About', () => {
    const act = actions();
    const menu = appMenuTemplate({ platform: 'linux', isDevelopment: false, canCheckForUpdates: true, actions: act });
    const help = menu.at(-1);
    expect(help?.label).toBe('Help');
    expect(help?.submenu?.filter((i) => i.label).map((i) => i.label)).toEqual([
      'Export Diagnostics…',
      'Clearance Documentation',
      'Contact Support',
      'Check for Updates…',
      'About Clearance',
    ]);
    for (const item of help?.submenu ?? []) item.click?.();
    expect(act.exportDiagnostics).toHaveBeenCalledOnce();
    expect(act.openDocumentation).toHaveBeenCalledOnce();
    expect(act.showSupportContact).toHaveBeenCalledOnce();
    expect(act.checkForUpdates).toHaveBeenCalledOnce();
    expect(act.showAbout).toHaveBeenCalledOnce();
  });

  it('greys out Check for Updates when IT does not let the app update itself', () => {
    const menu = appMenuTemplate({
      platform: 'win32',
      isDevelopment: false,
      canCheckForUpdates: false,
      actions: actions(),
    });
    expect(find(menu, 'Check for Updates…')?.enabled).toBe(false);
  });

  it('offers DevTools and reload only in a development build', () => {
    const packaged = appMenuTemplate({
      platform: 'linux',
      isDevelopment: false,
      canCheckForUpdates: false,
      actions: actions(),
    });
    expect(roles(packaged)).not.toContain('toggleDevTools');
    expect(roles(packaged)).not.toContain('reload');
    const dev = appMenuTemplate({
      platform: 'linux',
      isDevelopment: true,
      canCheckForUpdates: false,
      actions: actions(),
    });
    expect(roles(dev)).toContain('toggleDevTools');
  });

  it('on macOS puts About in the app menu and keeps the standard edit roles', () => {
    const act = actions();
    const menu = appMenuTemplate({ platform: 'darwin', isDevelopment: false, canCheckForUpdates: true, actions: act });
    expect(menu.map((m) => m.label)).toEqual(['Clearance', 'Edit', 'View', 'Window', 'Help']);
    expect(find(menu[0]?.submenu ?? [], 'About Clearance')).toBeDefined();
    expect(find(menu.at(-1)?.submenu ?? [], 'About Clearance')).toBeUndefined();
    expect(roles(menu)).toEqual(expect.arrayContaining(['copy', 'paste', 'selectAll', 'quit']));
  });
});

describe('aboutText and supportText', () => {
  it('lists the versions and the update state', () => {
    expect(
      aboutText({ version: '0.1.0', electron: '45.5.0', gatewayUrl: 'https://gw.example', update: 'notify (latest)' }),
    ).toBe('Version 0.1.0\nElectron 45.5.0\nGateway: https://gw.example\nUpdates: notify (latest)');
  });

  it('names the contact, or the help desk when none is set', () => {
    expect(supportText('it@lab.example').message).toBe('Contact it@lab.example');
    expect(supportText(undefined).message).toBe('Contact your IT help desk');
  });
});
