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
