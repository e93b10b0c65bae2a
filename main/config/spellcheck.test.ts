import { describe, expect, it } from 'vitest';
import { spellCheckerSettings } from './spellcheck';

describe('spellCheckerSettings', () => {
  it('turns the spell checker off only when IT locked spell check off', () => {
    expect(spellCheckerSettings({ config: { spellCheck: false, locks: ['spellCheck'] } }).enabled).toBe(false);
    expect(spellCheckerSettings({ config: { spellCheck: false } }).enabled).toBe(true);
    expect(spellCheckerSettings({ config: { locks: ['spellCheck'] } }).enabled).toBe(true);
    expect(spellCheckerSettings({ config: {} })).toEqual({ enabled: true });
  });

  it('downloads dictionaries from IT’s source, as a folder URL', () => {
    expect(
      spellCheckerSettings({ config: { spellCheckDictionaryUrl: 'https://dictionaries.lab.example/hunspell' } }),
    ).toEqual({ enabled: true, dictionaryUrl: 'https://dictionaries.lab.example/hunspell/' });
  });
});

describe('spellCheckerSettings: a source that already names a folder', () => {
  it('keeps a dictionary URL that ends with a slash as it is', () => {
    expect(
      spellCheckerSettings({ config: { spellCheckDictionaryUrl: 'https://dictionaries.lab.example/hunspell/' } }),
    ).toEqual({ enabled: true, dictionaryUrl: 'https://dictionaries.lab.example/hunspell/' });
  });
});
