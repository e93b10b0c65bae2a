import { LogoIcon, WarningIcon } from '../components/icons';
import { Spinner } from '../components/Spinner';

/** Shown while the first state loads. */
export function LoadingScreen() {
  return (
    <main className="screen-center">
      <div className="loading" role="status">
        <LogoIcon className="icon logo-large" />
        <p>
          <Spinner /> Starting Clearance…
        </p>
      </div>
    </main>
  );
}

/** Shown when the first state could not be loaded, with the reason, a retry and the diagnostics bundle for IT. */
export function StartupFailedScreen({
  message,
  onRetry,
  onExportDiagnostics,
}: {
  readonly message: string;
  readonly onRetry?: () => void;
  readonly onExportDiagnostics?: () => void;
}) {
  return (
    <main className="screen-center">
      <div className="card" role="alert">
        <WarningIcon className="icon logo-large icon-warning" />
        <h1>Clearance could not start</h1>
        <p>{message}</p>
        <div className="gate-actions">
          {onRetry ? (
            <button type="button" className="button button-primary" onClick={onRetry}>
              Try again
            </button>
          ) : null}
          {onExportDiagnostics ? (
            <button type="button" className="button" onClick={onExportDiagnostics}>
              Export diagnostics
            </button>
          ) : null}
        </div>
      </div>
    </main>
  );
}
