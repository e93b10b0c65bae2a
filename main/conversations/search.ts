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
 * A one-line excerpt of `text` around a match, with ellipses where it was cut.
 */
export function snippetAround(text: string, match: TextMatch, before = 40, after = 100): string {
  let start = Math.max(0, match.index - before);
  let end = Math.min(text.length, match.index + match.length + after);
  if (start > 0) {
    const space = text.lastIndexOf(' ', match.index);
    if (space > start) start = space + 1;
  }
  if (end < text.length) {
    const space = text.indexOf(' ', match.index + match.length);
    if (space !== -1 && space < end) end = Math.max(space, text.lastIndexOf(' ', end));
  }
  const body = text.slice(start, end).replace(/\s+/g, ' ').trim();
  return `${start > 0 ? '…' : ''}${body}${end < text.length ? '…' : ''}`;
}
