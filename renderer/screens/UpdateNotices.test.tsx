// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import type { UpdateStatus } from '../../shared/update';
import { byRole, click, perform, queryByRole, renderApp, type Rendered } from '../test/dom';
import { FakeClearance, ok } from '../test/fakeClearance';

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

const notify: UpdateStatus = {
  policy: 'notify',
  state: 'up-to-date',
  currentVersion: '0.1.0',
  channel: 'latest',
  feedUrl: 'https://updates.lab.example/clearance/',
  canUpdate: true,
};

describe('update notices', () => {
  it('below the gateway’s minimum version, explains and offers the update instead of the app', async () => {
    const fake = new FakeClearance({
      update: { ...notify, state: 'available', availableVersion: '0.2.0', requiredVersion: '0.2.0' },
    });
    view = await renderApp(fake);
    const screen = document.querySelector('[data-testid="update-required"]');
    expect(screen?.textContent).toContain('Your organisation requires Clearance 0.2.0 or later');
    expect(screen?.textContent).toContain('This computer has version 0.1.0');
    expect(queryByRole(document.body, 'textbox', 'Message')).toBeNull();
    await click(byRole(document.body, 'button', 'Download Clearance 0.2.0'));
    expect(fake.calls.map((c) => c.channel)).toContain('installUpdate');
  });

  it('when IT installs updates, says whom to ask and offers only diagnostics', async () => {
    const fake = new FakeClearance({
      update: {
        policy: 'off',
        state: 'disabled',
        currentVersion: '0.1.0',
        message: 'Your organisation installs Clearance updates itself (managed setting updatePolicy is off).',
        requiredVersion: '0.3.0',
        canUpdate: false,
      },
    });
    view = await renderApp(fake);
    const screen = document.querySelector('[data-testid="update-required"]');
    expect(screen?.textContent).toContain('Ask IT to install the new version');
    expect(queryByRole(document.body, 'button', /Download|Check for updates|Restart/)).toBeNull();
    await click(byRole(document.body, 'button', 'Export diagnostics'));
    expect(fake.calls.map((c) => c.channel)).toContain('exportDiagnostics');
  });

  it('in the app, a banner announces an update and then its restart', async () => {
    const fake = new FakeClearance({ update: notify });
    view = await renderApp(fake);
    expect(document.querySelector('[data-testid="update-banner"]')).toBeNull();
    await perform(() => fake.emit('updateChanged', { ...notify, state: 'available', availableVersion: '0.2.0' }));
    const banner = document.querySelector('[data-testid="update-banner"]');
    expect(banner?.textContent).toContain('Clearance 0.2.0 is available (you have 0.1.0)');
    fake.handle('installUpdate', () => ok({ ...notify, state: 'ready', availableVersion: '0.2.0', percent: 100 }));
    await click(byRole(document.body, 'button', 'Download Clearance 0.2.0'));
    expect(document.querySelector('[data-testid="update-banner"]')?.textContent).toContain(
      'It installs when you quit Clearance',
    );
    expect(byRole(document.body, 'button', 'Restart and update')).toBeTruthy();
  });
});
