const fenceOpen = /^ {0,3}(`{3,}|~{3,})/;
const blank = /^\s*$/;
const indented = /^(?: {2,}|\t)/;

/**
 * Splits markdown into top-level blocks that render the same alone as together.
 *
 * A block ends at a blank line outside a fenced code block, unless the next line is indented
 * (a list item's continuation stays with its item). While a reply streams, every block but the
 * last is complete and never changes again, which is what lets the renderer memoize them.
 * Known limit: reference-style link definitions and footnotes only resolve within their block.
 */
export function splitMarkdownBlocks(text: string): string[] {
  const lines = text.split('\n');
  const blocks: string[] = [];
  let current: string[] = [];
  let fence: { readonly marker: string; readonly length: number } | undefined;

  const finish = () => {
    if (current.some((line) => !blank.test(line))) blocks.push(current.join('\n'));
    current = [];
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (fence) {
      current.push(line);
      const close = line.match(fenceOpen);
      if (
        close?.[1] &&
        close[1][0] === fence.marker &&
        close[1].length >= fence.length &&
        blank.test(line.slice(close[0].length))
      ) {
        fence = undefined;
      }
      continue;
    }
    const open = line.match(fenceOpen);
    if (open?.[1]) {
      fence = { marker: open[1][0] ?? '`', length: open[1].length };
      current.push(line);
      continue;
    }
    if (blank.test(line)) {
      let next = i + 1;
      while (next < lines.length && blank.test(lines[next] ?? '')) next++;
      const following = lines[next];
      if (following !== undefined && indented.test(following) && current.length > 0) {
        current.push(line);
        continue;
      }
      finish();
      continue;
    }
    current.push(line);
  }
  finish();
  return blocks;
}
