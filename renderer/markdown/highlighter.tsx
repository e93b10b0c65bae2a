import { createContext, useCallback, useContext, useRef, useState, type ReactNode } from 'react';
import type { Options } from 'react-markdown';

/** The rehype plugins markdown blocks render with. */
export type RehypePlugins = NonNullable<Options['rehypePlugins']>;

/** Loads the syntax-highlighting rehype plugin. */
export type HighlighterLoader = () => Promise<RehypePlugins>;

const none: RehypePlugins = [];
// Two contexts, so blocks that only render (plugins) never re-render when the loader changes.
const PluginsContext = createContext<RehypePlugins>(none);
const RequestContext = createContext<() => void>(() => undefined);

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
  return (
    <RequestContext.Provider value={request}>
      <PluginsContext.Provider value={plugins}>{children}</PluginsContext.Provider>
    </RequestContext.Provider>
  );
}

/** The rehype plugins to render markdown with: none until highlighting has loaded. */
export function useHighlightPlugins(): RehypePlugins {
  return useContext(PluginsContext);
}

/** Asks for highlighting to be loaded (once); blocks re-render when it arrives. */
export function useRequestHighlighting(): () => void {
  return useContext(RequestContext);
}
