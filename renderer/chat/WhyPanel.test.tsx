// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import { byRole, click, flush, focus, perform, press, queryByRole, renderApp, type Rendered } from '../test/dom';
import { FakeClearance } from '../test/fakeClearance';
import { entitlementsFixture } from '../test/fixtures';

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

async function openWhyForMythos() {
  const fake = new FakeClearance();
  const app = await renderApp(fake);
  view = app;
  const combobox = byRole(document.body, 'combobox', 'Model');
  await focus(combobox);
  await click(combobox);
  await click(document.querySelector('[data-testid="why-mythos-5"]') as Element);
  const dialog = byRole(document.body, 'dialog', 'Why is Mythos 5 unavailable?');
  return { fake, app, dialog, combobox };
}

describe('Why is this unavailable?', () => {
  it('shows the rule’s title, message, policy id, effective date and contact', async () => {
    const { dialog } = await openWhyForMythos();
    const text = dialog.textContent ?? '';
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(text).toContain('Restricted by export-control directive');
    expect(text).toContain('Mythos 5 may only be used by verified US persons under directive EC-2026-06.');
    expect(text).toContain('ec-2026-06-us-persons');
    expect(text).toContain('EXPORT_CONTROL_US_PERSON_REQUIRED');
    expect(dialog.querySelector('time')?.getAttribute('dateTime')).toBe('2026-06-18T00:00:00Z');
    expect(dialog.querySelector('time')?.textContent).toMatch(/2026/);
    expect(text).toContain('export-compliance@lab.example');
  });

  it('lists each blocking rule with its own remediations, and leaves out a date the rule does not state', async () => {
    const fake = new FakeClearance();
    const mythos = entitlementsFixture.models.find((m) => m.id === 'mythos-5');
    if (!mythos) throw new Error('fixture lacks mythos-5');
    fake.state.entitlements = {
      ...entitlementsFixture,
      models: entitlementsFixture.models.map((m) =>
        m.id === 'mythos-5'
          ? {
              ...m,
              rules: [
                {
                  policy: 'model-required-groups',
                  reason: 'GROUP_MEMBERSHIP_REQUIRED',
                  title: 'Group membership required',
                  message: 'Mythos 5 is limited to members of: research.',
                  remediations: [{ label: 'Request group membership', url: 'https://access.lab.example/groups' }],
                },
                {
                  policy: 'ec-2026-06-us-persons',
                  reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
                  title: 'Restricted by export-control directive',
                  message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
                  since: '2026-06-18T00:00:00Z',
                  remediations: [
                    {
                      label: 'Ask export control about a licence',
                      url: 'https://x.lab.example/l',
                      appliesTo: 'If you are not a US person',
                    },
                  ],
                },
              ],
            }
          : m,
      ),
    };
    view = await renderApp(fake);
    await click(byRole(document.body, 'button', 'My access'));
    await click(byRole(document.body, 'button', 'Why is Mythos 5 unavailable?'));
    const dialog = byRole(document.body, 'dialog', 'Why is Mythos 5 unavailable?');
    const sections = [...dialog.querySelectorAll('[data-testid="why-rule"]')];
    expect(sections.map((section) => section.querySelector('h3')?.textContent?.trim())).toEqual([
      'Group membership required',
      'Restricted by export-control directive',
    ]);
    expect(sections[0]?.textContent).not.toContain('In effect since');
    expect(dialog.textContent).not.toContain('Not stated');
    expect(sections[1]?.querySelector('time')?.getAttribute('dateTime')).toBe('2026-06-18T00:00:00Z');
    expect(sections[1]?.textContent).toContain('If you are not a US person');
    await click(byRole(sections[1] as HTMLElement, 'button', 'Ask export control about a licence'));
    await flush();
    expect(fake.callsTo('openExternal')).toEqual([{ url: 'https://x.lab.example/l' }]);
  });

  it('opens the remediation URL from the document through openExternal', async () => {
    const { dialog, fake } = await openWhyForMythos();
    await click(byRole(dialog, 'button', 'Request US-person verification'));
    await flush();
    expect(fake.callsTo('openExternal')).toEqual([{ url: 'https://access.lab.example/verify' }]);
  });

  it('uses the organisation’s support contact when the model names none', async () => {
    const fake = new FakeClearance();
    view = await renderApp(fake);
    await click(byRole(document.body, 'button', 'My access'));
    await click(byRole(document.body, 'button', 'Why is Opus Lab unavailable?'));
    const dialog = byRole(document.body, 'dialog', 'Why is Opus Lab unavailable?');
    expect(dialog.textContent).toContain(entitlementsFixture.supportContact);
    expect(dialog.textContent).toContain('hardware-key-required');
    expect(queryByRole(dialog, 'button', /Request/)).toBeNull();
  });

  it('moves focus inside, keeps Tab inside, closes on Escape and returns focus to the picker', async () => {
    const { dialog, combobox } = await openWhyForMythos();
    expect(dialog.contains(document.activeElement)).toBe(true);
    const close = byRole(dialog, 'button', 'Close');
    const buttons = [...dialog.querySelectorAll('button')];
    const last = buttons[buttons.length - 1] as HTMLButtonElement;
    await focus(last);
    const tab = await press(last, 'Tab');
    expect(tab.defaultPrevented).toBe(true);
    expect(document.activeElement).toBe(close);
    await press(document.activeElement as Element, 'Escape');
    expect(queryByRole(document.body, 'dialog')).toBeNull();
    expect(document.activeElement).toBe(combobox);
  });

  it('closes by itself when the model becomes available', async () => {
    const { fake } = await openWhyForMythos();
    await perform(() =>
      fake.setEntitlements({
        ...entitlementsFixture,
        models: entitlementsFixture.models.map((m) =>
          m.id === 'mythos-5' ? { id: m.id, name: m.name, status: 'allowed' } : m,
        ),
      }),
    );
    expect(queryByRole(document.body, 'dialog')).toBeNull();
  });
});
