import type { ManagedPolicy } from './policy';

/** How Chromium's spell checker is set up for the whole session. */
export interface SpellCheckerSettings {
  /** Off only when IT locked spell check off; a person's own choice is the page's `spellcheck`. */
  readonly enabled: boolean;
  /** Where Hunspell dictionaries are downloaded from (Linux, Windows without system dictionaries). */
  readonly dictionaryUrl?: string;
}

/** The spell checker settings IT's managed configuration calls for. */
export function spellCheckerSettings(policy: Pick<ManagedPolicy, 'config'>): SpellCheckerSettings {
  // Stryker disable next-line ArrayDeclaration: a fallback list holding any other name does not include 'spellCheck' either
  const lockedOff = policy.config.spellCheck === false && (policy.config.locks ?? []).includes('spellCheck');
  const url = policy.config.spellCheckDictionaryUrl;
  return {
    enabled: !lockedOff,
    ...(url ? { dictionaryUrl: url.endsWith('/') ? url : `${url}/` } : {}),
  };
}
