/** A case-insensitive text match: where it starts and how long it is in the searched text. */
export interface TextMatch {
  readonly index: number;
  readonly length: number;
}

/**
 * Builds a matcher for what the user typed: literal text, case-insensitive (Unicode case folding).
 *
 * Answers undefined for a blank query, meaning "list everything".
 */
export function textMatcher(query: string | undefined): ((text: string) => TextMatch | undefined) | undefined {
  const needle = query?.trim().replace(/\s+/g, ' ');
  if (!needle) return undefined;
  const pattern = new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s+'), 'iu');
  return (text) => {
    const found = pattern.exec(text);
    return found ? { index: found.index, length: found[0].length } : undefined;
  };
}

/**
 * Markdown as the words a reader sees: no emphasis markers, code fences, backticks, heading or quote
 * marks, list bullets or table pipes, and links as their text.
 *
 * For one-line excerpts only (search snippets); it is not a Markdown parser.
 */
export function markdownToPlainText(markdown: string): string {
  return markdown
    .replace(/^\s*(?:```|~~~)[^\n]*$/gm, ' ')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/^\s{0,3}(?:#{1,6}|>+|[-*+]|\d+[.)])\s+/gm, '')
    .replace(/:?-{3,}:?/g, ' ')
    .replace(/\|/g, ' ')
    .replace(/(\*\*|__|~~|`+)/g, '')
    .replace(/(^|[\s(])[*_](\S)/g, '$1$2')
    .replace(/(\S)[*_](?=[\s).,;:!?]|$)/g, '$1');
}

/**
 * A one-line excerpt of `text` around a match, with ellipses where it was cut, as plain text (no Markdown marks).
 */
export function snippetAround(text: string, match: TextMatch, before = 24, after = 100): string {
  let start = Math.max(0, match.index - before);
  let end = Math.min(text.length, match.index + match.length + after);
  if (start > 0) {
    // Start at a word boundary within the context before the hit, not at the hit itself.
    const space = text.indexOf(' ', start);
    if (space !== -1 && space < match.index) start = space + 1;
  }
  if (end < text.length) {
    const space = text.indexOf(' ', match.index + match.length);
    if (space !== -1 && space < end) end = Math.max(space, text.lastIndexOf(' ', end));
  }
  const body = markdownToPlainText(text.slice(start, end)).replace(/\s+/g, ' ').trim();
  return `${start > 0 ? '…' : ''}${body}${end < text.length ? '…' : ''}`;
}
