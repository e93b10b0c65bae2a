// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagedPolicyView } from '../../shared/managedPolicy';
import { byRole, click, queryByRole, renderApp, type Rendered } from '../test/dom';
import { FakeClearance } from '../test/fakeClearance';

let view: Rendered | undefined;
afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

const managed: ManagedPolicyView = {
  state: 'managed',
  entries: [
    {
      key: 'gatewayUrl',
      value: 'https://gw.lab.example',
      source: 'registry',
      level: 'machine',
      location: 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Clearance\\gatewayUrl',
      status: 'applied',
    },
    {
      key: 'theme',
      value: 'dark',
      source: 'registry',
      level: 'user',
      location: 'HKEY_CURRENT_USER\\SOFTWARE\\Policies\\Clearance\\theme',
      status: 'overridden',
      reason: 'The machine policy sets this key.',
    },
    {
      key: 'futureSetting',
      value: 'on',
      source: 'registry',
      level: 'machine',
      location: 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Clearance\\futureSetting',
      status: 'unknown',
      reason: 'This version of Clearance does not know this key.',
    },
  ],
  problems: [],
  locked: ['theme'],
  settings: { theme: 'dark', spellCheck: false },
};

describe('Settings and locks', () => {
  it('shows a locked theme read-only with the notice, and refuses to change it', async () => {
    const app = await renderApp(new FakeClearance({ policy: managed }));
    view = app;
    expect(app.store.getState().theme).toBe('dark');
    await click(byRole(document.body, 'button', 'Settings'));
    const dark = document.querySelector<HTMLInputElement>('input[name="theme"][value="dark"]') as HTMLInputElement;
    expect(dark.checked).toBe(true);
    expect(dark.disabled).toBe(true);
    const group = document.querySelector('fieldset') as HTMLFieldSetElement;
    expect(group.querySelector('legend')?.textContent).toBe('Colour theme');
    expect(document.getElementById(group.getAttribute('aria-describedby') ?? '')?.textContent).toContain(
      'Managed by your organisation',
    );
    const themeButton = byRole(document.body, 'button', /^Theme: Dark\. Managed by your organisation/);
    await click(themeButton);
    app.store.getState().setTheme('light');
    expect(app.store.getState().theme).toBe('dark');
  });

  it('takes IT’s unlocked value as a default the person can change', async () => {
    const app = await renderApp(new FakeClearance({ policy: managed }));
    view = app;
    expect(app.store.getState().spellCheck).toBe(false);
    await click(byRole(document.body, 'button', 'Settings'));
    const box = document.querySelector<HTMLInputElement>('input[type="checkbox"]') as HTMLInputElement;
    expect(box.closest('label')?.textContent).toContain('Check spelling');
    expect(box.disabled).toBe(false);
    await click(box);
    expect(app.store.getState().spellCheck).toBe(true);
    await click(byRole(document.body, 'button', 'Chat'));
    expect(byRole(document.body, 'textbox', 'Message').getAttribute('spellcheck')).toBe('true');
  });

  it('lists each managed key with its value, source and status on the Policies page', async () => {
    view = await renderApp(new FakeClearance({ policy: managed }));
    await click(byRole(document.body, 'button', 'Settings'));
    await click(byRole(document.body, 'button', 'View policies'));
    const table = document.querySelector('table.policies-table') as HTMLTableElement;
    expect(table.querySelector('caption')?.textContent).toBe('Managed policies');
    const row = (key: string) => table.querySelector(`[data-testid="policy-${key}"]`)?.textContent ?? '';
    expect(row('gatewayUrl')).toContain('https://gw.lab.example');
    expect(row('gatewayUrl')).toContain('Registry (machine)');
    expect(row('gatewayUrl')).toContain('Applied');
    expect(row('theme')).toMatch(/Registry \(user\).*Overridden.*machine policy/);
    expect(row('futureSetting')).toContain('Unknown key');
  });

  it('stops at a screen naming the key, the problem and the contact when the policy is invalid', async () => {
    const fake = new FakeClearance({
      policy: {
        ...managed,
        state: 'invalid',
        problems: [
          {
            key: 'updatePolicy',
            location: '/etc/clearance/policy.json',
            message: 'Invalid option: expected one of "off"|"notify"|"auto"',
          },
        ],
        supportContact: 'IT Service Desk, ext. 4242',
      },
    });
    view = await renderApp(fake);
    const alert = byRole(document.body, 'alert');
    expect(alert.textContent).toContain('have a problem');
    expect(alert.textContent).toContain('updatePolicy');
    expect(alert.textContent).toContain('expected one of "off"|"notify"|"auto"');
    expect(alert.textContent).toContain('IT Service Desk, ext. 4242');
    expect(queryByRole(document.body, 'button', /^sign in/i)).toBeNull();
    expect(fake.calls.map((c) => c.channel)).toEqual(['getManagedPolicy']);
  });
});
