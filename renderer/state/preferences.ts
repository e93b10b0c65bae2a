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
}

const THEME_KEY = 'clearance.theme';
const SPELL_CHECK_KEY = 'clearance.spellCheck';

function isTheme(value: unknown): value is ThemePreference {
  return value === 'system' || value === 'light' || value === 'dark';
}

/**
 * Preferences kept in the page's `localStorage`; a missing or unreadable store falls back to defaults.
 */
export function storagePreferences(storage: Pick<Storage, 'getItem' | 'setItem'> | undefined): PreferenceStore {
  return {
    readTheme() {
      try {
        const value = storage?.getItem(THEME_KEY);
        return isTheme(value) ? value : 'system';
      } catch {
        return 'system';
      }
    },
    writeTheme(theme) {
      try {
        storage?.setItem(THEME_KEY, theme);
      } catch {
        // A full or disabled store only costs the preference, never the app.
      }
    },
    hasTheme() {
      try {
        return isTheme(storage?.getItem(THEME_KEY));
      } catch {
        return false;
      }
    },
    readSpellCheck() {
      try {
        const value = storage?.getItem(SPELL_CHECK_KEY);
        return value === 'on' ? true : value === 'off' ? false : undefined;
      } catch {
        return undefined;
      }
    },
    writeSpellCheck(enabled) {
      try {
        storage?.setItem(SPELL_CHECK_KEY, enabled ? 'on' : 'off');
      } catch {
        // As for the theme: only the preference is lost.
      }
    },
  };
}

/** Preferences held in memory, for tests and for pages without storage. */
export function memoryPreferences(initial?: ThemePreference, initialSpellCheck?: boolean): PreferenceStore {
  let theme = initial;
  let spellCheck = initialSpellCheck;
  return {
    readTheme: () => theme ?? 'system',
    writeTheme: (next) => {
      theme = next;
    },
    hasTheme: () => theme !== undefined,
    readSpellCheck: () => spellCheck,
    writeSpellCheck: (next) => {
      spellCheck = next;
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
