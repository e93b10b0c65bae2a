import { useId } from 'react';
import { isLocked } from '../state/policy';
import { themeLabels, themeOrder } from '../state/preferences';
import { useActions, useAppState } from '../state/context';
import { ManagedNotice } from './ManagedNotice';

/**
 * Settings a person can change (theme, spell check); those IT locked are read-only with
 * "Managed by your organisation". Links to the Policies page.
 */
export function SettingsPage() {
  const policy = useAppState((state) => state.policy);
  const theme = useAppState((state) => state.theme);
  const spellCheck = useAppState((state) => state.spellCheck);
  const { setTheme, setSpellCheck, showView } = useActions();
  const themeLocked = isLocked(policy, 'theme');
  const spellLocked = isLocked(policy, 'spellCheck');
  const themeNotice = useId();
  const spellNotice = useId();
  return (
    <div className="access-page settings-page" data-testid="settings">
      <div className="page-header">
        <h1>Settings</h1>
      </div>

      <fieldset className="setting" aria-describedby={themeLocked ? themeNotice : undefined}>
        <legend>Colour theme</legend>
        <div className="setting-options">
          {themeOrder.map((option) => (
            <label key={option} className="setting-option">
              <input
                type="radio"
                name="theme"
                value={option}
                checked={theme === option}
                disabled={themeLocked}
                onChange={() => setTheme(option)}
              />{' '}
              {themeLabels[option]}
            </label>
          ))}
        </div>
        {themeLocked ? <ManagedNotice id={themeNotice} /> : null}
      </fieldset>

      <fieldset className="setting" aria-describedby={spellLocked ? spellNotice : undefined}>
        <legend>Spell check</legend>
        <label className="setting-option">
          <input
            type="checkbox"
            checked={spellCheck}
            disabled={spellLocked}
            onChange={(event) => setSpellCheck(event.target.checked)}
          />{' '}
          Check spelling while I type a message
        </label>
        {spellLocked ? <ManagedNotice id={spellNotice} /> : null}
      </fieldset>

      <section className="setting">
        <h2>Your organisation’s policies</h2>
        <p className="lede">
          {policy?.state === 'managed'
            ? 'Your organisation manages some of Clearance’s settings on this device.'
            : 'No managed settings are installed on this device.'}
        </p>
        <p>
          <button type="button" className="button" onClick={() => showView('policies')}>
            View policies
          </button>
        </p>
      </section>
    </div>
  );
}
