import { DEFAULT_TITLE } from '../conversations/ConversationStore';

/** The lines of `content` outside fenced code blocks, trimmed, without blank ones. */
function proseLines(content: string): string[] {
  const lines: string[] = [];
  let inFence = false;
  for (const raw of content.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('```') || line.startsWith('~~~')) {
      inFence = !inFence;
      continue;
    }
    if (!inFence && line.length > 0) lines.push(line);
  }
  return lines;
}

/**
 * A conversation title from the first user message: its first line of prose, cut at a word near `max` characters.
 *
 * Code blocks and Markdown markers are skipped; a message of only code gets the default title.
 */
export function titleFromMessage(content: string, max = 60): string {
  const line = proseLines(content)
    .map((candidate) => candidate.replace(/^(?:[#>*+-]+\s*|\d+[.)]\s+)+/, '').replace(/[`*_]/g, ''))
    .find((candidate) => candidate.trim().length > 0);
  const words = (line ?? '').replace(/\s+/g, ' ').trim();
  if (words.length === 0) return DEFAULT_TITLE;
  if (words.length <= max) return words;
  const cut = words.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:!?-]+$/, '')}…`;
}
