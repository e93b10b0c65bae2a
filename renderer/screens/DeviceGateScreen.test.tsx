// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceStatus, IpcResult } from '../../shared/ipc';
import { byRole, click, flush, perform, press, queryByRole, renderApp, type Rendered } from '../test/dom';
import { FakeClearance, ok } from '../test/fakeClearance';
import { blockedDevice, passingDevice } from '../test/fixtures';

let view: (Rendered & { readonly clipboard?: string[] }) | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

function gate(): HTMLElement {
  return document.querySelector('[data-testid="device-gate"]') as HTMLElement;
}

describe('device gate', () => {
  it('stops at the gate, listing every check with its outcome in words, failing ones first', async () => {
    view = await renderApp(new FakeClearance({ device: blockedDevice }));
    expect(gate()).not.toBeNull();
    expect(queryByRole(document.body, 'textbox', 'Message')).toBeNull();
    const items = [...byRole(gate(), 'list', 'Device checks').querySelectorAll('li')];
    expect(items.map((item) => item.querySelector('.check-name')?.textContent)).toEqual([
      'Disk encryption',
      'Screen lock',
      'Operating system version',
      'Firewall',
    ]);
    expect(items.map((item) => item.querySelector('.check-status')?.textContent)).toEqual([
      'Failed',
      'Could not be checked',
      'Passed',
      'Passed',
    ]);
    expect(items.every((item) => item.querySelector('svg.icon'))).toBe(true);
  });

  it('marks required checks and says what to do for each one that is not passing', async () => {
    view = await renderApp(new FakeClearance({ device: blockedDevice }));
    const items = [...gate().querySelectorAll('li')];
    const [disk, screenLock, os] = items;
    expect(disk?.textContent).toContain('Required');
    expect(disk?.textContent).toContain('What to do: Enable full-disk encryption (LUKS)');
    expect(screenLock?.textContent).toContain('Required');
    expect(screenLock?.textContent).toContain('What to do: Turn on automatic screen lock');
    expect(os?.textContent).not.toContain('Required');
    expect(os?.textContent).not.toContain('What to do');
    expect(gate().textContent).toContain('2 required checks are not passing');
  });

  it('says the device waits for IT approval when the gateway holds its enrolment pending', async () => {
    const message = 'The gateway refused this device: IT has been asked to approve this one.';
    view = await renderApp(
      new FakeClearance({
        device: { ...passingDevice, gate: 'blocked', enrolment: { reason: 'DEVICE_ENROLMENT_PENDING', message } },
      }),
    );
    expect(gate()).not.toBeNull();
    expect(queryByRole(document.body, 'textbox', 'Message')).toBeNull();
    expect(byRole(gate(), 'heading').textContent).toBe('Device waiting for approval');
    expect(byRole(gate(), 'status').textContent).toBe(message);
    expect(gate().textContent).not.toContain('required checks are not passing');
  });

  it('shows a short device thumbprint for IT, never more than it needs', async () => {
    view = await renderApp(new FakeClearance({ device: blockedDevice }));
    const code = gate().querySelector('.gate-it code');
    expect(code?.textContent).toBe('Q1w2E3r4…234567');
    expect(gate().textContent).toContain('(software)');
  });

  it('checks again with progress, and lets the user in once the device passes', async () => {
    const fake = new FakeClearance({ device: blockedDevice });
    let answer: (result: IpcResult<DeviceStatus>) => void = () => undefined;
    fake.handle('recheckDevice', () => new Promise((resolve) => (answer = resolve)));
    view = await renderApp(fake);
    await click(byRole(gate(), 'button', 'Check again'));
    const busy = byRole(gate(), 'button', 'Checking…') as HTMLButtonElement;
    expect(busy.disabled).toBe(true);
    expect(busy.getAttribute('aria-busy')).toBe('true');
    await perform(() => answer(ok(passingDevice)));
    expect(fake.callsTo('recheckDevice')).toHaveLength(1);
    expect(gate()).toBeNull();
    expect(byRole(document.body, 'textbox', 'Message')).toBeTruthy();
  });

  it('lets the fixes and the device details be copied, names the IT contact, and says what a check found', async () => {
    const fake = new FakeClearance({ device: blockedDevice });
    const app = await renderApp(fake);
    view = app;
    await click(byRole(gate(), 'button', 'Copy what to do for Disk encryption'));
    expect(app.clipboard.at(-1)).toMatch(/^Enable full-disk encryption \(LUKS\)/);
    await click(byRole(gate(), 'button', 'Copy details for IT'));
    const details = app.clipboard.at(-1) ?? '';
    expect(details).toContain(`Device key: ${blockedDevice.thumbprint} (software)`);
    expect(details).toContain('Disk encryption: Failed (required)');
    expect(details).toContain('What to do: Enable full-disk encryption (LUKS)');
    expect(gate().querySelector('[data-testid="device-gate-contact"]')?.textContent).toContain('it-help@lab.example');

    fake.handle('recheckDevice', () => Promise.resolve(ok(blockedDevice)));
    await click(byRole(gate(), 'button', 'Check again'));
    await flush();
    expect(gate().querySelector('[data-testid="device-check-result"]')?.textContent).toBe(
      'Checked just now: 2 required checks are still not passing.',
    );
  });

  it('follows a device change pushed by main', async () => {
    const fake = new FakeClearance({ device: passingDevice });
    view = await renderApp(fake);
    expect(gate()).toBeNull();
    await perform(() => fake.emit('deviceChanged', blockedDevice));
    expect(gate()).not.toBeNull();
  });

  it('signs out from the gate', async () => {
    const fake = new FakeClearance({ device: blockedDevice });
    view = await renderApp(fake);
    await click(byRole(gate(), 'button', 'Sign out'));
    await flush();
    expect(fake.callsTo('signOut')).toHaveLength(1);
    expect(document.querySelector('[data-testid="sign-in-screen"]')).not.toBeNull();
  });
});

describe('device gate limited to models', () => {
  const limitedDevice: DeviceStatus = { ...blockedDevice, gate: 'limited' };

  function banner(): HTMLElement | null {
    return document.querySelector('[data-testid="device-limited-banner"]');
  }

  it('opens the app with a banner naming the failing checks instead of stopping at the gate', async () => {
    view = await renderApp(new FakeClearance({ device: limitedDevice }));
    expect(gate()).toBeNull();
    expect(queryByRole(document.body, 'textbox', 'Message')).not.toBeNull();
    const shown = banner();
    expect(shown?.getAttribute('role')).toBe('status');
    expect(shown?.textContent).toContain('(Disk encryption, Screen lock)');
    expect(shown?.textContent).toContain('Models that need a compliant device are unavailable');
    expect(shown?.textContent).toContain('including your history');
  });

  it('shows no banner on a passing device, and the full gate when blocked', async () => {
    const fake = new FakeClearance({ device: passingDevice });
    view = await renderApp(fake);
    expect(banner()).toBeNull();
    await perform(() => fake.emit('deviceChanged', blockedDevice));
    expect(banner()).toBeNull();
    expect(gate()).not.toBeNull();
    expect(queryByRole(gate(), 'button', 'Back to Clearance')).toBeNull();
  });

  it('opens the device checks from the banner, checks again, and Esc returns to the banner’s button', async () => {
    const fake = new FakeClearance({ device: limitedDevice });
    view = await renderApp(fake);
    await click(byRole(banner() as HTMLElement, 'button', 'Review device checks'));
    expect(gate()).not.toBeNull();
    expect(gate().querySelector('h1')?.textContent).toBe('Device checks');
    expect(gate().textContent).toContain('2 required checks are not passing, so models that need a compliant device');
    expect(document.activeElement).toBe(byRole(gate(), 'button', 'Back to Clearance'));
    expect(queryByRole(gate(), 'button', 'Sign out')).toBeNull();

    fake.handle('recheckDevice', () => Promise.resolve(ok(limitedDevice)));
    await click(byRole(gate(), 'button', 'Check again'));
    await flush();
    expect(fake.callsTo('recheckDevice')).toHaveLength(1);
    expect(gate().querySelector('[data-testid="device-check-result"]')?.textContent).toBe(
      'Checked just now: 2 required checks are still not passing.',
    );

    await press(document.body, 'Escape');
    expect(gate()).toBeNull();
    expect(document.activeElement).toBe(byRole(banner() as HTMLElement, 'button', 'Review device checks'));

    // Fixed: the banner goes, the app stays.
    await perform(() => fake.emit('deviceChanged', passingDevice));
    expect(banner()).toBeNull();
    expect(gate()).toBeNull();
  });
});
