import { DownloadIcon, InfoIcon, RefreshIcon, WarningIcon } from '../components/icons';
import { Spinner } from '../components/Spinner';
import { useActions, useAppState } from '../state/context';
import type { UpdateStatus } from '../../shared/update';

/** The one button that moves an update forward from where it stands (check, download, restart). */
function UpdateAction({ update, primary }: { readonly update: UpdateStatus; readonly primary?: boolean }) {
  const { checkForUpdates, installUpdate } = useActions();
  const className = primary ? 'button button-primary' : 'button';
  if (!update.canUpdate) return null;
  switch (update.state) {
    case 'available':
      return (
        <button type="button" className={className} onClick={() => void installUpdate()}>
          <DownloadIcon /> Download Clearance {update.availableVersion}
        </button>
      );
    case 'downloading':
      return (
        <button type="button" className={className} disabled aria-busy="true">
          <Spinner /> Downloading… {update.percent ?? 0}%
        </button>
      );
    case 'ready':
      return (
        <button type="button" className={className} onClick={() => void installUpdate()}>
          <RefreshIcon /> Restart and update
        </button>
      );
    case 'checking':
      return (
        <button type="button" className={className} disabled aria-busy="true">
          <Spinner /> Checking for updates…
        </button>
      );
    default:
      return (
        <button type="button" className={className} onClick={() => void checkForUpdates()}>
          <RefreshIcon /> Check for updates
        </button>
      );
  }
}

/** The banner of the signed-in app when an update is found, downloading or ready (IT's `notify` and `auto`). */
export function UpdateBanner() {
  const update = useAppState((state) => state.update);
  if (!update || !['available', 'downloading', 'ready'].includes(update.state)) return null;
  const text =
    update.state === 'ready'
      ? `Clearance ${update.availableVersion ?? ''} is ready. It installs when you quit Clearance, or restart now.`
      : `Clearance ${update.availableVersion ?? ''} is available (you have ${update.currentVersion}).`;
  return (
    <div className="banner banner-update" role="status" data-testid="update-banner">
      <InfoIcon />
      <p>{text}</p>
      <UpdateAction update={update} />
    </div>
  );
}

/**
 * Shown instead of the app when the gateway requires a newer version: what is required, what this is,
 * and the way forward (the update, when IT lets the app update itself, or whom to ask).
 */
export function UpdateRequiredScreen() {
  const update = useAppState((state) => state.update);
  const contact = useAppState((state) => state.entitlements?.supportContact ?? state.policy?.supportContact);
  const { exportDiagnostics } = useActions();
  if (!update?.requiredVersion) return null;
  return (
    <main className="screen-center">
      <div className="card" role="alert" data-testid="update-required">
        <WarningIcon className="icon logo-large icon-warning" />
        <h1>Update Clearance to continue</h1>
        <p>
          Your organisation requires Clearance {update.requiredVersion} or later. This computer has version{' '}
          {update.currentVersion}.
        </p>
        {update.canUpdate ? (
          <p>{update.state === 'ready' ? 'The update is downloaded and checked.' : 'Clearance can update itself.'}</p>
        ) : (
          <p>
            {update.message ?? 'Clearance does not update itself on this computer.'} Ask IT to install the new version
            {contact ? (
              <>
                : <strong className="selectable">{contact}</strong>
              </>
            ) : null}
            .
          </p>
        )}
        {update.state === 'error' && update.message ? (
          <div className="callout callout-error">
            <WarningIcon />
            <p className="selectable">{update.message}</p>
          </div>
        ) : null}
        <div className="gate-actions">
          <UpdateAction update={update} primary />
          <button type="button" className="button" onClick={() => void exportDiagnostics()}>
            Export diagnostics
          </button>
        </div>
      </div>
    </main>
  );
}
