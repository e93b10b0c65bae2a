// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import type { IpcResult, SessionState } from '../../shared/ipc';
import { byRole, click, perform, queryByRole, renderApp, type Rendered } from '../test/dom';
import { fail, FakeClearance, ok } from '../test/fakeClearance';
import { signedInSession, signedOutSession } from '../test/fixtures';

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

function screen(): HTMLElement {
  return document.querySelector('[data-testid="sign-in-screen"]') as HTMLElement;
}

/** A fake whose sign-in waits (like the system browser) until the test answers. */
function waitingFake(session: SessionState = signedOutSession) {
  const fake = new FakeClearance({ session });
  let answer: (result: IpcResult<SessionState>) => void = () => undefined;
  fake.handle('signIn', () => {
    fake.setSession({ status: 'signing-in', tokenPersistence: session.tokenPersistence });
    return new Promise((resolve) => (answer = resolve));
  });
  return { fake, answer: (result: IpcResult<SessionState>) => answer(result) };
}

describe('sign-in screen', () => {
  it('says what Clearance is, what will happen and which gateway it uses', async () => {
    view = await renderApp(new FakeClearance({ session: signedOutSession }));
    expect(byRole(screen(), 'heading', 'Sign in to Clearance')).toBeTruthy();
    expect(screen().textContent).toContain('Your browser will open to sign in with your organisation.');
    expect(screen().textContent).toContain('gateway.example.test');
    expect(byRole(screen(), 'button', 'Sign in')).toBeTruthy();
    expect(screen().querySelector('[data-testid="session-only-notice"]')).toBeNull();
  });

  it('shows progress with Cancel while the browser sign-in is under way, and cancels', async () => {
    const { fake, answer } = waitingFake();
    view = await renderApp(fake);
    await click(byRole(screen(), 'button', 'Sign in'));
    expect(byRole(screen(), 'status').textContent).toContain('Waiting for you to finish signing in');
    expect(queryByRole(screen(), 'button', 'Sign in')).toBeNull();
    await click(byRole(screen(), 'button', 'Cancel'));
    await perform(() => answer(fail('SIGN_IN_CANCELLED', 'Sign-in was cancelled.')));
    expect(fake.callsTo('cancelSignIn')).toHaveLength(1);
    expect(byRole(screen(), 'button', 'Sign in')).toBeTruthy();
    expect(queryByRole(screen(), 'alert')).toBeNull();
  });

  it('reaches the app when sign-in completes', async () => {
    const { fake, answer } = waitingFake();
    view = await renderApp(fake);
    await click(byRole(screen(), 'button', 'Sign in'));
    await perform(() => {
      fake.setSession(signedInSession);
      answer(ok(signedInSession));
    });
    expect(screen()).toBeNull();
    expect(byRole(document.body, 'button', 'Account: Ada Lovelace')).toBeTruthy();
  });

  it('explains a failed sign-in in plain words and lets the user try again', async () => {
    const fake = new FakeClearance({ session: signedOutSession });
    fake.handle('signIn', () => fail('SIGN_IN_FAILED', 'Your organisation did not allow this app to sign you in.'));
    view = await renderApp(fake);
    await click(byRole(screen(), 'button', 'Sign in'));
    expect(byRole(screen(), 'alert').textContent).toContain('Your organisation did not allow this app to sign you in.');
    expect((byRole(screen(), 'button', 'Sign in') as HTMLButtonElement).disabled).toBe(false);
  });

  it('shows the last error main recorded (for example, renewal needing interaction)', async () => {
    view = await renderApp(
      new FakeClearance({
        session: { ...signedOutSession, lastError: 'Your session ended. Sign in again to continue.' },
      }),
    );
    expect(byRole(screen(), 'alert').textContent).toContain('Your session ended. Sign in again to continue.');
  });

  it('warns that sign-in is not remembered when tokens can only be kept for the session', async () => {
    view = await renderApp(new FakeClearance({ session: { status: 'signed-out', tokenPersistence: 'session-only' } }));
    expect(screen().querySelector('[data-testid="session-only-notice"]')?.textContent).toContain(
      'You’ll need to sign in each time you open it.',
    );
  });
});
