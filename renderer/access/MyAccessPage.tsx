import { useMemo } from 'react';
import { LockIcon, PassIcon, RefreshIcon, WarningIcon } from '../components/icons';
import { Spinner } from '../components/Spinner';
import { formatDateTime, formatRelative, formatSince } from '../components/format';
import { deniedTitle, listedModels } from '../state/access';
import { useActions, useAppState } from '../state/context';
import { AccessBanner, LiveState } from './LiveState';

const documentStatus = {
  none: 'Not received yet',
  current: 'Current',
  stale: 'Expired — restricted models unavailable',
};

/**
 * My access: every model, whether the user may use it and the rule if not, plus the state of
 * the access document (version, expiry, last refresh, live updates) and a Refresh button.
 */
export function MyAccessPage() {
  const view = useAppState((state) => state.entitlements);
  const refreshing = useAppState((state) => state.entitlementsRefreshing);
  const error = useAppState((state) => state.entitlementsError);
  const { refreshEntitlements, openWhy } = useActions();
  const models = useMemo(() => listedModels(view), [view]);

  return (
    <div className="access-page" data-testid="my-access">
      <div className="page-header">
        <h1>My access</h1>
        <button
          type="button"
          className="button"
          onClick={() => void refreshEntitlements()}
          disabled={refreshing}
          aria-busy={refreshing}
        >
          {refreshing ? <Spinner /> : <RefreshIcon />} {refreshing ? 'Refreshing…' : 'Refresh'}
        </button>
      </div>
      <p className="lede">
        The models your organisation permits you to use, and the rule behind each restriction. Only rules that apply to
        you are shown.
      </p>

      <AccessBanner view={view} />
      {error ? (
        <div className="callout callout-error" role="alert">
          <WarningIcon />
          <p>Access could not be refreshed: {error}</p>
        </div>
      ) : null}

      <section className="access-summary" aria-label="Access document">
        <LiveState live={view?.live ?? 'offline'} />
        <dl className="facts facts-grid">
          <div>
            <dt>Status</dt>
            <dd>{documentStatus[view?.status ?? 'none']}</dd>
          </div>
          <div>
            <dt>Document version</dt>
            <dd>{view?.ver ?? '—'}</dd>
          </div>
          <div>
            <dt>Valid until</dt>
            <dd>{view?.expiresAt ? <time dateTime={view.expiresAt}>{formatDateTime(view.expiresAt)}</time> : '—'}</dd>
          </div>
          <div>
            <dt>Last refreshed</dt>
            <dd>
              {view?.lastRefresh ? (
                <>
                  <time dateTime={view.lastRefresh}>{formatDateTime(view.lastRefresh)}</time>{' '}
                  <span className="muted">({formatRelative(view.lastRefresh)})</span>
                </>
              ) : (
                'Never'
              )}
            </dd>
          </div>
        </dl>
      </section>

      {models.length > 0 ? (
        <div className="table-scroll" tabIndex={0} role="group" aria-label="Models and your access">
          <table className="access-table">
            <caption className="visually-hidden">Models and your access</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Status</th>
                <th scope="col">Reason</th>
                <th scope="col">Rule</th>
                <th scope="col">Since</th>
                <th scope="col">
                  <span className="visually-hidden">Details</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {models.map((model) => {
                const allowed = model.status === 'allowed';
                return (
                  <tr key={model.id} className={allowed ? 'is-allowed' : 'is-denied'} data-model-id={model.id}>
                    <th scope="row">
                      <span className="model-cell">
                        {model.name}
                        {model.demo ? <span className="badge badge-demo">Demo</span> : null}
                      </span>
                    </th>
                    <td className="access-status" data-label="Status">
                      <span className={`status-pill ${allowed ? 'status-allowed' : 'status-denied'}`}>
                        {allowed ? <PassIcon /> : <LockIcon />} {allowed ? 'Available' : 'Restricted'}
                      </span>
                    </td>
                    <td className="access-reason" data-label="Reason">
                      {allowed ? '—' : deniedTitle(model)}
                    </td>
                    <td className="access-rule" data-label="Rule">
                      {model.policy ? <code>{model.policy}</code> : '—'}
                    </td>
                    <td className="access-since" data-label="Since">
                      {model.since ? <time dateTime={model.since}>{formatSince(model.since)}</time> : '—'}
                    </td>
                    <td className="access-why">
                      {allowed ? null : (
                        <button
                          type="button"
                          className="button button-small"
                          aria-label={`Why is ${model.name} unavailable?`}
                          onClick={() => openWhy(model.id)}
                        >
                          Why?
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="muted">
          {view?.status === 'none' ? 'Your access document has not arrived yet.' : 'No models are listed for you.'}
        </p>
      )}
      {view?.supportContact ? (
        <p className="muted">
          Questions about your access? Contact <strong className="selectable">{view.supportContact}</strong>.
        </p>
      ) : null}
    </div>
  );
}
