import type { PolicyEntry } from '../../shared/managedPolicy';
import { useActions, useAppState } from '../state/context';

const sourceLabels: Readonly<Record<PolicyEntry['source'], string>> = {
  registry: 'Registry',
  profile: 'Configuration profile',
  file: 'Policy file',
};

const statusLabels: Readonly<Record<PolicyEntry['status'], string>> = {
  applied: 'Applied',
  rejected: 'Rejected',
  overridden: 'Overridden',
  unknown: 'Unknown key',
};

/**
 * Every managed key found on this device (like `chrome://policy`): its value, the store it came
 * from, and whether it applied or was rejected and why. IT reads it when checking a laptop.
 */
export function PoliciesPage() {
  const policy = useAppState((state) => state.policy);
  const { showView } = useActions();
  const entries = policy?.entries ?? [];
  return (
    <div className="access-page policies-page" data-testid="policies">
      <div className="page-header">
        <h1>Policies</h1>
        <button type="button" className="button" onClick={() => showView('settings')}>
          Back to settings
        </button>
      </div>
      <p className="lede">
        Settings your organisation deploys to this device through the operating system’s policy store. They are read
        when Clearance starts; restart it to pick up a change.
      </p>
      {entries.length === 0 ? (
        <p>No managed settings are installed on this device.</p>
      ) : (
        <div className="table-scroll" tabIndex={0} role="group" aria-label="Managed policies">
          <table className="access-table policies-table">
            <caption className="visually-hidden">Managed policies</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                <th scope="col">Source</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((entry) => (
                <tr
                  key={`${entry.location}|${entry.key}`}
                  className={`policy-${entry.status}`}
                  data-testid={`policy-${entry.key}`}
                >
                  <th scope="row">
                    <code>{entry.key}</code>
                  </th>
                  <td className="policy-value">
                    <code className="selectable">{entry.value}</code>
                  </td>
                  <td>
                    {sourceLabels[entry.source]} ({entry.level})
                    <div className="muted small selectable">{entry.location}</div>
                  </td>
                  <td>
                    <span className={`status-pill policy-status-${entry.status}`}>{statusLabels[entry.status]}</span>
                    {entry.reason ? <div className="muted small">{entry.reason}</div> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
