import type { LockableSetting, ManagedPolicyView } from '../../shared/managedPolicy';
import type { ThemePreference } from './preferences';

/** True when IT locked the setting: the app shows it read-only with "Managed by your organisation". */
export function isLocked(policy: ManagedPolicyView | undefined, setting: LockableSetting): boolean {
  return policy?.locked.includes(setting) ?? false;
}

/**
 * The theme in force: IT's when locked (the app's default if IT set none), the person's choice when
 * they made one, else IT's default.
 */
export function effectiveTheme(
  policy: ManagedPolicyView | undefined,
  chosen: ThemePreference,
  personChose: boolean,
): ThemePreference {
  if (isLocked(policy, 'theme')) return policy?.settings.theme ?? 'system';
  if (personChose) return chosen;
  return policy?.settings.theme ?? chosen;
}

/** Whether spell check is on: the same rule as the theme, on by default. */
export function effectiveSpellCheck(policy: ManagedPolicyView | undefined, chosen: boolean | undefined): boolean {
  if (isLocked(policy, 'spellCheck')) return policy?.settings.spellCheck ?? true;
  return chosen ?? policy?.settings.spellCheck ?? true;
}
