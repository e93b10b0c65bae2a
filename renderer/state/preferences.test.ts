import { describe, expect, it } from 'vitest';
import { personKey, storagePreferences } from './preferences';

function memoryStorage(): Pick<Storage, 'getItem' | 'setItem'> & { readonly items: Map<string, string> } {
  const items = new Map<string, string>();
  return { items, getItem: (key) => items.get(key) ?? null, setItem: (key, value) => void items.set(key, value) };
}

describe('storagePreferences', () => {
  it('keeps each person’s choices under their own key, apart from the device’s, without spelling out their id', () => {
    const storage = memoryStorage();
    const preferences = storagePreferences(storage);
    preferences.writeTheme('light');
    preferences.usePerson('avery.lab-tenant');
    expect(preferences.hasTheme()).toBe(false);
    preferences.writeTheme('dark');
    preferences.writeSpellCheck(false);
    preferences.usePerson('bao.lab-tenant');
    expect(preferences.readTheme()).toBe('system');
    expect(preferences.readSpellCheck()).toBeUndefined();
    preferences.usePerson(undefined);
    expect(preferences.readTheme()).toBe('light');
    preferences.usePerson('avery.lab-tenant');
    expect(preferences.readTheme()).toBe('dark');
    expect(preferences.readSpellCheck()).toBe(false);
    expect([...storage.items.keys()].join(' ')).not.toContain('avery');
    expect(personKey('avery.lab-tenant')).not.toBe(personKey('bao.lab-tenant'));
    expect(personKey('avery.lab-tenant')).toMatch(/^[0-9a-f]{16}$/);
  });
});
