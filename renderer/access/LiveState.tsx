import type { EntitlementsView, LiveUpdateState } from '../../shared/ipc';
import { ClockIcon, LiveIcon, OfflineIcon, WarningIcon } from '../components/icons';
import { formatDateTime } from '../components/format';

const liveText: Readonly<Record<LiveUpdateState, { readonly label: string; readonly detail: string }>> = {
  connected: { label: 'Connected', detail: 'Changes to your access reach this app within a second.' },
  polling: {
    label: 'Polling',
    detail: 'The live connection is down, so Clearance checks for changes every minute.',
  },
  offline: { label: 'Offline', detail: 'Clearance cannot reach the gateway right now.' },
};

/** How the app is hearing about access changes, with an icon and words (never colour alone). */
export function LiveState({ live, compact = false }: { readonly live: LiveUpdateState; readonly compact?: boolean }) {
  const Icon = live === 'connected' ? LiveIcon : live === 'polling' ? ClockIcon : OfflineIcon;
  const text = liveText[live];
  return (
    <div className={`live-state live-${live}${compact ? ' is-compact' : ''}`} data-testid="live-state" data-live={live}>
      <Icon />
      <div>
        <span className="live-state-label">
          Live updates: <strong>{text.label}</strong>
        </span>
        {compact ? null : <span className="live-state-detail">{text.detail}</span>}
      </div>
    </div>
  );
}

/**
 * The banner shown while access may be out of date: offline, or the document has expired.
 *
 * No model is available then (main fails closed and marks each one); the banner says so in words.
 */
export function AccessBanner({ view }: { readonly view: EntitlementsView | undefined }) {
  if (!view) return null;
  const offline = view.live === 'offline';
  const stale = view.status === 'stale';
  if (!offline && !stale) return null;
  const asOf = view.lastRefresh ? `on ${formatDateTime(view.lastRefresh)}` : 'never';
  return (
    <div className="banner banner-warning" role="status" data-testid="access-banner">
      <WarningIcon />
      <p>
        {offline ? (
          <>
            <strong>You’re offline</strong> — Clearance last confirmed your access {asOf}. No model is available until
            it can reach the gateway again; your conversations stay readable.
          </>
        ) : (
          <>
            <strong>Your access could not be confirmed</strong> — the access document expired
            {view.expiresAt ? ` at ${formatDateTime(view.expiresAt)}` : ''}; restricted models are unavailable until
            Clearance can refresh it.
          </>
        )}
      </p>
    </div>
  );
}
