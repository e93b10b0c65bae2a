/** The colour theme a person chose: follow the operating system, or force light or dark. */
export type ThemePreference = 'system' | 'light' | 'dark';

/** Theme choices in the order the header's theme button cycles through them. */
export const themeOrder: readonly ThemePreference[] = ['system', 'light', 'dark'];

/** Names of the theme choices as the UI shows them. */
export const themeLabels: Readonly<Record<ThemePreference, string>> = {
  system: 'System',
  light: 'Light',
  dark: 'Dark',
};

/**
 * Where the page keeps its own display preferences (never tokens or conversation content).
 */
export interface PreferenceStore {
  readTheme(): ThemePreference;
  writeTheme(theme: ThemePreference): void;
  /** The person's own choice, or undefined when they never chose (IT's default then applies). */
  readSpellCheck(): boolean | undefined;
  writeSpellCheck(enabled: boolean): void;
  /** Whether the person ever chose a theme (IT's default applies until they do). */
  hasTheme(): boolean;
  /**
   * Whose preferences to read and write: a signed-in person's own, or (undefined) the device's, shown
   * before anyone signs in. One person's choices never become another's on a shared laptop.
   */
  usePerson(accountId: string | undefined): void;
}

const THEME_KEY = 'theme';
const SPELL_CHECK_KEY = 'spellCheck';

/**
 * A short digest of an account id (FNV-1a, 2 × 32 bits), so storage keys separate people without
 * spelling out who has used the device. Preferences are not secret; the digest only keeps ids out of sight.
 */
export function personKey(accountId: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ accountId.length;
  for (let i = 0; i < accountId.length; i++) {
    const code = accountId.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193) >>> 0;
    b = Math.imul(b ^ code ^ (a >>> 7), 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

function isTheme(value: unknown): value is ThemePreference {
  return value === 'system' || value === 'light' || value === 'dark';
}

/**
 * Preferences kept in the page's `localStorage`; a missing or unreadable store falls back to defaults.
 */
export function storagePreferences(storage: Pick<Storage, 'getItem' | 'setItem'> | undefined): PreferenceStore {
  let scope = 'clearance.';
  const THEME_KEY_OF = () => `${scope}${THEME_KEY}`;
  const SPELL_CHECK_KEY_OF = () => `${scope}${SPELL_CHECK_KEY}`;
  return {
    usePerson(accountId) {
      scope = accountId === undefined ? 'clearance.' : `clearance.person.${personKey(accountId)}.`;
    },
    readTheme() {
      try {
        const value = storage?.getItem(THEME_KEY_OF());
        return isTheme(value) ? value : 'system';
      } catch {
        return 'system';
      }
    },
    writeTheme(theme) {
      try {
        storage?.setItem(THEME_KEY_OF(), theme);
      } catch {
        // A full or disabled store only costs the preference, never the app.
      }
    },
    hasTheme() {
      try {
        return isTheme(storage?.getItem(THEME_KEY_OF()));
      } catch {
        return false;
      }
    },
    readSpellCheck() {
      try {
        const value = storage?.getItem(SPELL_CHECK_KEY_OF());
        return value === 'on' ? true : value === 'off' ? false : undefined;
      } catch {
        return undefined;
      }
    },
    writeSpellCheck(enabled) {
      try {
        storage?.setItem(SPELL_CHECK_KEY_OF(), enabled ? 'on' : 'off');
      } catch {
        // As for the theme: only the preference is lost.
      }
    },
  };
}

/** Preferences held in memory, for tests and for pages without storage. */
export function memoryPreferences(initial?: ThemePreference, initialSpellCheck?: boolean): PreferenceStore {
  const people = new Map<string, { theme?: ThemePreference; spellCheck?: boolean }>();
  let current: { theme?: ThemePreference; spellCheck?: boolean } = { theme: initial, spellCheck: initialSpellCheck };
  const device = current;
  return {
    readTheme: () => current.theme ?? 'system',
    writeTheme: (next) => {
      current.theme = next;
    },
    hasTheme: () => current.theme !== undefined,
    readSpellCheck: () => current.spellCheck,
    writeSpellCheck: (next) => {
      current.spellCheck = next;
    },
    usePerson: (accountId) => {
      if (accountId === undefined) {
        current = device;
        return;
      }
      const existing = people.get(accountId) ?? {};
      people.set(accountId, existing);
      current = existing;
    },
  };
}

/**
 * Applies a theme to the document: `data-theme` forces light or dark, its absence follows the OS.
 */
export function applyTheme(root: HTMLElement, theme: ThemePreference): void {
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}
