import { useEffect, useRef, useState } from 'react';
import type { PostureCheck } from '../../shared/device';
import type { DeviceStatus } from '../../shared/ipc';
import { reasonTitles } from '../../shared/reasonTitles';
import { CopyIcon, DeviceIcon, FailIcon, PassIcon, RefreshIcon, SignOutIcon, UnknownIcon } from '../components/icons';
import { Spinner } from '../components/Spinner';
import { checkLabels, formatDateTime, shortThumbprint } from '../components/format';
import { useActions, useAppState } from '../state/context';

const statusText: Readonly<Record<PostureCheck['status'], string>> = {
  pass: 'Passed',
  fail: 'Failed',
  unknown: 'Could not be checked',
};

const order: Readonly<Record<PostureCheck['status'], number>> = { fail: 0, unknown: 1, pass: 2 };

function CheckIcon({ status }: { readonly status: PostureCheck['status'] }) {
  if (status === 'pass') return <PassIcon />;
  if (status === 'fail') return <FailIcon />;
  return <UnknownIcon />;
}

/** The device's state as plain text for IT: key, assurance, when checked, and every check with its detail. */
export function deviceDetailsText(device: DeviceStatus | undefined): string {
  const required = new Set(device?.requiredChecks ?? []);
  return [
    `Device key: ${device?.thumbprint ?? 'unknown'}${device?.assurance ? ` (${device.assurance})` : ''}`,
    `Checked: ${device?.checkedAt ?? 'not yet'}`,
    ...(device?.enrolment ? [`Enrolment: ${device.enrolment.reason}: ${device.enrolment.message}`] : []),
    ...(device?.problem ? [`Problem: ${device.problem}`] : []),
    ...(device?.checks ?? []).map(
      (check) =>
        `${checkLabels[check.id]}: ${statusText[check.status]}${required.has(check.id) ? ' (required)' : ''}` +
        `${check.detail ? ` — ${check.detail}` : ''}${check.status !== 'pass' && check.remediation ? ` — What to do: ${check.remediation}` : ''}`,
    ),
  ].join('\n');
}

/** Where the device checks page goes back to when the gate only limits models (absent: the full gate). */
export interface DeviceGateScreenProps {
  readonly onBack?: () => void;
}

/**
 * The device gate: shown instead of the chat when a required posture check does not pass.
 *
 * Lists every check with its outcome in words and an icon, and for each one that is not passing
 * what to do. A check that could not tell counts as not passing. When the gateway's enrolment
 * policy refused the device (waiting for IT's approval, no device certificate), it says so first.
 * With `onBack` (the policy limits only some models) it is a page of the app: Back or Esc returns.
 */
export function DeviceGateScreen({ onBack }: DeviceGateScreenProps = {}) {
  const device = useAppState((state) => state.device);
  const checking = useAppState((state) => state.deviceChecking);
  const error = useAppState((state) => state.deviceError);
  const supportContact = useAppState((state) => state.entitlements?.supportContact);
  const { recheckDevice, signOut, copy, exportDiagnostics } = useActions();
  const [result, setResult] = useState<string | undefined>(undefined);
  const required = new Set(device?.requiredChecks ?? []);
  const checks = [...(device?.checks ?? [])].sort((a, b) => order[a.status] - order[b.status]);
  const enrolment = device?.enrolment;
  const blocking = checks.filter((check) => required.has(check.id) && check.status !== 'pass').length;
  const backButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (!onBack) return undefined;
    backButton.current?.focus();
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key !== 'Escape' || event.defaultPrevented) return;
      event.preventDefault();
      onBack();
    };
    window.addEventListener('keydown', onKeyDown);
    return () => window.removeEventListener('keydown', onKeyDown);
  }, [onBack]);

  return (
    <main className="screen-center" data-testid="device-gate">
      <div className="card gate-card">
        {onBack ? (
          <p className="gate-back">
            <button ref={backButton} type="button" className="button button-ghost" onClick={onBack}>
              <span aria-hidden="true">←</span> Back to Clearance
            </button>
          </p>
        ) : null}
        <DeviceIcon className="icon logo-large" />
        <h1>{enrolment ? reasonTitles[enrolment.reason] : onBack ? 'Device checks' : 'This device needs attention'}</h1>
        {enrolment ? (
          <p className="callout" role="status" data-testid="device-enrolment">
            {enrolment.message}
          </p>
        ) : null}
        {onBack && !enrolment ? (
          <p>
            {blocking === 0
              ? 'Every required check passes: every model your access allows is available.'
              : `${blocking === 1 ? 'One required check is' : `${blocking} required checks are`} not passing, so models that need a compliant device are unavailable. Everything else, including your history, works.`}
          </p>
        ) : blocking > 0 || !enrolment ? (
          <p>
            Your organisation requires some checks to pass before Clearance can be used on this device.{' '}
            {blocking === 1 ? 'One required check is' : `${blocking} required checks are`} not passing.
          </p>
        ) : null}

        <ul className="checks" aria-label="Device checks">
          {checks.map((check) => (
            <li key={check.id} className={`check check-${check.status}`}>
              <CheckIcon status={check.status} />
              <div className="check-body">
                <p className="check-head">
                  <span className="check-name">{checkLabels[check.id]}</span>
                  <span className="check-status">{statusText[check.status]}</span>
                  {required.has(check.id) ? <span className="badge badge-required">Required</span> : null}
                </p>
                {check.detail ? <p className="check-detail">{check.detail}</p> : null}
                {check.status !== 'pass' && check.remediation ? (
                  <p className="check-fix">
                    <strong>What to do:</strong> <span className="selectable">{check.remediation}</span>{' '}
                    <button
                      type="button"
                      className="button button-ghost button-small"
                      aria-label={`Copy what to do for ${checkLabels[check.id]}`}
                      onClick={() => void copy(check.remediation, `What to do for ${checkLabels[check.id]}`)}
                    >
                      <CopyIcon /> Copy
                    </button>
                  </p>
                ) : null}
              </div>
            </li>
          ))}
        </ul>

        {error ? (
          <p className="callout callout-error" role="alert">
            The check could not run: {error}
          </p>
        ) : null}

        {result && !checking ? (
          <p className="gate-result" role="status" data-testid="device-check-result">
            {device?.gate === 'pass'
              ? 'Checked just now: this device now meets the requirements.'
              : blocking > 0
                ? `Checked just now: ${blocking === 1 ? 'one required check is' : `${blocking} required checks are`} still not passing.`
                : 'Checked just now: this device is still blocked, for the reason above.'}
          </p>
        ) : null}

        <div className="gate-actions">
          <button
            type="button"
            className="button button-primary"
            onClick={() => {
              setResult(undefined);
              void recheckDevice().then(() => setResult('done'));
            }}
            disabled={checking}
            aria-busy={checking}
          >
            {checking ? <Spinner /> : <RefreshIcon />} {checking ? 'Checking…' : 'Check again'}
          </button>
          {onBack ? null : (
            <button type="button" className="button" onClick={() => void signOut()}>
              <SignOutIcon /> Sign out
            </button>
          )}
          <button type="button" className="button" onClick={() => void exportDiagnostics()}>
            Export diagnostics
          </button>
          <button
            type="button"
            className="button"
            onClick={() => void copy(deviceDetailsText(device), 'Device details')}
          >
            <CopyIcon /> Copy details for IT
          </button>
        </div>

        {supportContact ? (
          <p className="gate-contact" data-testid="device-gate-contact">
            Need help? Contact <strong className="selectable">{supportContact}</strong> and paste the details.
          </p>
        ) : null}

        <p className="gate-it">
          For IT: device key <code title={device?.thumbprint}>{shortThumbprint(device?.thumbprint)}</code>
          {device?.assurance ? ` (${device.assurance})` : ''}
          {device?.checkedAt ? ` · checked ${formatDateTime(device.checkedAt)}` : ''}
          {device?.thumbprint ? (
            <>
              {' '}
              <button
                type="button"
                className="link-button"
                onClick={() => device.thumbprint && void copy(device.thumbprint, 'Device thumbprint')}
              >
                Copy full thumbprint
              </button>
            </>
          ) : null}
        </p>
      </div>
    </main>
  );
}

/**
 * The banner of the main layout while the device is `limited`: which required checks fail, that models
 * needing a compliant device are unavailable and the rest works, and the way to the device checks.
 */
export function DeviceLimitedBanner({ onReview }: { readonly onReview: () => void }) {
  const device = useAppState((state) => state.device);
  if (device?.gate !== 'limited') return null;
  // A required check that is missing from the report fails like one that failed.
  const all = device.requiredChecks
    .filter((id) => device.checks.find((check) => check.id === id)?.status !== 'pass')
    .map((id) => (checkLabels as Readonly<Record<string, string>>)[id] ?? id);
  return (
    <div className="banner banner-warning" role="status" data-testid="device-limited-banner">
      <DeviceIcon />
      <p>
        <strong>This device does not pass every required check</strong>
        {all.length > 0 ? ` (${all.join(', ')})` : ''}. Models that need a compliant device are unavailable; everything
        else, including your history, works.{' '}
        <button type="button" className="button button-small" onClick={onReview}>
          Review device checks
        </button>
      </p>
    </div>
  );
}
