// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import type { IpcResult, SessionState } from '../shared/ipc';
import { byRole, click, flush, perform, press, queryByRole, renderApp, type Rendered } from './test/dom';
import { fail, FakeClearance, ok } from './test/fakeClearance';
import { signedInSession, signedOutSession } from './test/fixtures';

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

describe('app shell', () => {
  it('shows a loading screen until the first state arrives', async () => {
    const fake = new FakeClearance();
    let answer: (result: IpcResult<SessionState>) => void = () => undefined;
    fake.handle('getSessionState', () => new Promise((resolve) => (answer = resolve)));
    view = await renderApp(fake);
    expect(byRole(document.body, 'status', /Starting Clearance/)).toBeTruthy();
    await perform(() => answer(ok(signedOutSession)));
    expect(document.querySelector('[data-testid="sign-in-screen"]')).not.toBeNull();
  });

  it('says plainly when startup fails and retries on request', async () => {
    const fake = new FakeClearance();
    fake.handle('getSessionState', () => fail('INTERNAL', 'The secret store could not be opened.'));
    view = await renderApp(fake);
    expect(byRole(document.body, 'alert').textContent).toContain('The secret store could not be opened.');
    fake.handle('getSessionState', () => ok(signedInSession));
    await click(byRole(document.body, 'button', 'Try again'));
    await flush();
    expect(byRole(document.body, 'textbox', 'Message')).toBeTruthy();
  });

  it('goes back to sign-in when main reports the session ended, clearing the conversations', async () => {
    const fake = new FakeClearance();
    fake.handle('listConversations', () =>
      ok([{ id: 'c1', title: 'Private notes', model: 'haiku-4', updatedAt: '2026-11-27T09:00:00Z', messageCount: 2 }]),
    );
    const app = await renderApp(fake);
    view = app;
    expect(document.body.textContent).toContain('Private notes');
    await perform(() => fake.setSession({ ...signedOutSession, lastError: 'Your session ended.' }));
    expect(document.querySelector('[data-testid="sign-in-screen"]')).not.toBeNull();
    expect(app.store.getState().conversations).toEqual([]);
  });

  it('shows the identity (name, username, organisation) in the account menu and signs out', async () => {
    const fake = new FakeClearance();
    view = await renderApp(fake);
    const account = byRole(document.body, 'button', 'Account: Ada Lovelace');
    await click(account);
    expect(account.getAttribute('aria-expanded')).toBe('true');
    const menu = byRole(document.body, 'menu', 'Account');
    expect(account.getAttribute('aria-controls')).toBe(menu.id);
    expect(document.activeElement).toBe(byRole(menu, 'menuitem', 'Switch account'));
    await press(document.activeElement as Element, 'ArrowDown');
    expect(document.activeElement).toBe(byRole(menu, 'menuitem', 'Sign out'));
    const panel = menu.parentElement as HTMLElement;
    expect(panel.textContent).toContain('ada@lab.example');
    expect(panel.textContent).toContain('Organisation: lab-tenant');
    expect(panel.textContent).not.toContain('ada.lab');
    await click(byRole(menu, 'menuitem', 'Sign out'));
    expect(fake.callsTo('signOut')).toHaveLength(1);
    expect(document.querySelector('[data-testid="sign-in-screen"]')).not.toBeNull();
  });

  it('closes the account menu on Escape and returns focus to its button', async () => {
    view = await renderApp(new FakeClearance());
    const account = byRole(document.body, 'button', 'Account: Ada Lovelace');
    await press(account, 'ArrowDown');
    expect(account.getAttribute('aria-expanded')).toBe('true');
    await press(document.activeElement as Element, 'Escape');
    expect(account.getAttribute('aria-expanded')).toBe('false');
    expect(document.activeElement).toBe(account);
  });

  it('switches account by signing out and starting a new sign-in', async () => {
    const fake = new FakeClearance();
    view = await renderApp(fake);
    await click(byRole(document.body, 'button', 'Account: Ada Lovelace'));
    await click(byRole(document.body, 'menuitem', 'Switch account'));
    await flush();
    expect(fake.calls.map((call) => call.channel).filter((c) => c === 'signOut' || c === 'signIn')).toEqual([
      'signOut',
      'signIn',
    ]);
  });

  it('unsubscribes from every event when unmounted', async () => {
    const fake = new FakeClearance();
    view = await renderApp(fake);
    expect(fake.listenerCount('chatDelta')).toBe(1);
    await view.unmount();
    view = undefined;
    for (const event of [
      'sessionChanged',
      'entitlementsChanged',
      'deviceChanged',
      'conversationsChanged',
      'chatDelta',
      'chatDone',
    ] as const) {
      expect(fake.listenerCount(event)).toBe(0);
    }
  });
});

describe('keyboard shortcuts', () => {
  it('focuses the search box on Ctrl+K and starts a new chat on Ctrl+N', async () => {
    const fake = new FakeClearance();
    const app = await renderApp(fake);
    view = app;
    const ctrlK = await press(document.body, 'k', { ctrlKey: true });
    expect(ctrlK.defaultPrevented).toBe(true);
    expect(document.activeElement).toBe(byRole(document.body, 'searchbox', 'Search conversations'));
    await perform(() => app.store.getState().openConversation('missing'));
    await press(document.body, 'n', { metaKey: true });
    expect(app.store.getState().activeConversationId).toBeUndefined();
    expect(byRole(document.body, 'heading', 'New chat')).toBeTruthy();
    expect(document.activeElement).toBe(byRole(document.body, 'textbox', 'Message'));
  });

  it('opens the shortcuts help on ? (outside text fields) and on Ctrl+/', async () => {
    view = await renderApp(new FakeClearance());
    await press(byRole(document.body, 'textbox', 'Message'), '?');
    expect(queryByRole(document.body, 'dialog')).toBeNull();
    await press(document.body, '?');
    const help = byRole(document.body, 'dialog', 'Keyboard shortcuts');
    expect(help.textContent).toContain('Ctrl+K');
    expect(help.textContent).toContain('Shift+Enter');
    await press(document.activeElement as Element, 'Escape');
    expect(queryByRole(document.body, 'dialog')).toBeNull();
    await press(document.body, '/', { ctrlKey: true });
    expect(byRole(document.body, 'dialog', 'Keyboard shortcuts')).toBeTruthy();
  });

  it('cycles the theme system → light → dark and names the current one', async () => {
    const app = await renderApp(new FakeClearance());
    view = app;
    await click(byRole(document.body, 'button', /^Theme: System/));
    expect(app.store.getState().theme).toBe('light');
    await click(byRole(document.body, 'button', /^Theme: Light/));
    expect(app.store.getState().theme).toBe('dark');
    expect(byRole(document.body, 'button', /^Theme: Dark/).getAttribute('aria-label')).toBe(
      'Theme: Dark. Switch to System',
    );
  });
});
