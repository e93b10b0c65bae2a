import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from 'react';
import type { Options } from 'react-markdown';

/** The rehype plugins markdown blocks render with. */
export type RehypePlugins = NonNullable<Options['rehypePlugins']>;

/** Loads the syntax-highlighting rehype plugin. */
export type HighlighterLoader = () => Promise<RehypePlugins>;

interface Highlighting {
  readonly plugins: RehypePlugins;
  /** Asks for highlighting to be loaded (once); blocks re-render when it arrives. */
  readonly request: () => void;
}

const none: RehypePlugins = [];
const HighlightingContext = createContext<Highlighting>({ plugins: none, request: () => undefined });

/**
 * Loads highlight.js (through rehype-highlight) only when a code block first needs it.
 *
 * The import is dynamic, so the grammars ship as a separate chunk that a conversation without
 * code never loads.
 */
export const loadRehypeHighlight: HighlighterLoader = async () => {
  const { default: rehypeHighlight } = await import('rehype-highlight');
  return [[rehypeHighlight, { detect: false, plainText: ['text', 'txt', 'plain', 'plaintext'] }]];
};

/** Provides lazily loaded syntax highlighting to every markdown block below it. */
export function HighlighterProvider({
  children,
  load = loadRehypeHighlight,
}: {
  readonly children: ReactNode;
  readonly load?: HighlighterLoader;
}) {
  const [plugins, setPlugins] = useState<RehypePlugins>(none);
  const requested = useRef(false);
  const request = useCallback(() => {
    if (requested.current) return;
    requested.current = true;
    load().then(setPlugins, () => {
      // Without highlighting code still shows as plain monospaced text; a later block may retry.
      requested.current = false;
    });
  }, [load]);
  const value = useMemo(() => ({ plugins, request }), [plugins, request]);
  return <HighlightingContext.Provider value={value}>{children}</HighlightingContext.Provider>;
}

/** The current highlighting plugins and a way to ask for them. */
export function useHighlighting(): Highlighting {
  return useContext(HighlightingContext);
}
