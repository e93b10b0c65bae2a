import { WarningIcon } from '../components/icons';
import { useActions, useAppState } from '../state/context';

/**
 * Shown instead of the app when IT's managed configuration is present but cannot be used: each
 * key and its problem, and whom to contact. The app never falls back to its defaults.
 */
export function ManagedPolicyErrorScreen() {
  const policy = useAppState((state) => state.policy);
  const problems = policy?.problems ?? [];
  const { exportDiagnostics } = useActions();
  return (
    <main className="screen-center">
      <div className="card managed-error" role="alert" data-testid="managed-policy-error">
        <WarningIcon className="icon logo-large icon-warning" />
        <h1>Your organisation’s settings for Clearance have a problem</h1>
        <p>Clearance will not start until IT corrects them. Tell them what this screen says:</p>
        <ul className="managed-problems">
          {problems.map((problem) => (
            <li key={`${problem.location}|${problem.key ?? ''}|${problem.message}`}>
              {problem.key ? (
                <>
                  <code>{problem.key}</code>:{' '}
                </>
              ) : null}
              <span className="selectable">{problem.message}</span>
              <div className="muted small selectable">Set in {problem.location}</div>
            </li>
          ))}
        </ul>
        <p>
          Contact: <strong className="selectable">{policy?.supportContact ?? 'your IT help desk'}</strong>
        </p>
        <div className="gate-actions">
          <button type="button" className="button" onClick={() => void exportDiagnostics()}>
            Export diagnostics
          </button>
        </div>
      </div>
    </main>
  );
}
