import { useState } from 'react';
import { InfoIcon, LogoIcon, WarningIcon } from '../components/icons';
import { Spinner } from '../components/Spinner';
import { hostOf } from '../components/format';
import { useActions, useAppState } from '../state/context';

/**
 * Sign-in: what Clearance is, what will happen (the system browser opens), progress while the
 * person signs in there, a cancel, and failures in plain words.
 */
export function SignInScreen() {
  const session = useAppState((state) => state.session);
  const callError = useAppState((state) => state.signInError);
  const appInfo = useAppState((state) => state.appInfo);
  const { signIn, cancelSignIn, exportDiagnostics } = useActions();
  const [starting, setStarting] = useState(false);
  const waiting = session?.status === 'signing-in';
  const error = callError ?? session?.lastError;

  const start = async () => {
    setStarting(true);
    try {
      await signIn();
    } finally {
      setStarting(false);
    }
  };

  return (
    <main className="screen-center" data-testid="sign-in-screen">
      <div className="card signin-card">
        <LogoIcon className="icon logo-large" />
        <h1>Sign in to Clearance</h1>
        <p className="tagline">
          Chat with the AI models your organisation permits, on a verified device — with every restriction explained.
        </p>

        {waiting ? (
          <div className="signin-waiting" role="status">
            <Spinner />
            <div>
              <p className="signin-waiting-title">Waiting for you to finish signing in…</p>
              <p className="muted">Complete the sign-in in the browser window that opened, then come back here.</p>
            </div>
            <button type="button" className="button" onClick={() => void cancelSignIn()}>
              Cancel
            </button>
          </div>
        ) : (
          <>
            <p>Your browser will open to sign in with your organisation.</p>
            <button
              type="button"
              className="button button-primary button-large"
              onClick={() => void start()}
              disabled={starting}
            >
              {starting ? <Spinner /> : null} Sign in
            </button>
          </>
        )}

        {error && !waiting ? (
          <div className="callout callout-error" role="alert">
            <WarningIcon />
            <p>
              <strong>Sign-in did not complete.</strong> {error}{' '}
              <button type="button" className="link-button" onClick={() => void exportDiagnostics()}>
                Export diagnostics
              </button>
            </p>
          </div>
        ) : null}

        {session?.tokenPersistence === 'session-only' ? (
          <div className="callout callout-info" data-testid="session-only-notice">
            <InfoIcon />
            <p>
              This computer has no secure secret store, so Clearance will not remember your sign-in. You’ll need to sign
              in each time you open it.
            </p>
          </div>
        ) : null}

        {appInfo ? (
          <p className="signin-org">
            Organisation gateway: <span className="selectable">{hostOf(appInfo.gatewayUrl)}</span>
          </p>
        ) : null}
      </div>
    </main>
  );
}
