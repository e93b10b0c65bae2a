import { describe, expect, it } from 'vitest';
import { splitMarkdownBlocks } from './blocks';

describe('splitMarkdownBlocks', () => {
  it('splits paragraphs, headings and lists at blank lines', () => {
    expect(splitMarkdownBlocks('# Title\n\nFirst para\ncontinues.\n\n- a\n- b\n')).toEqual([
      '# Title',
      'First para\ncontinues.',
      '- a\n- b',
    ]);
  });

  it('keeps a fenced code block whole, blank lines and all', () => {
    const code = '```python\ndef f():\n\n    return 1\n```';
    expect(splitMarkdownBlocks(`Intro\n\n${code}\n\nAfter`)).toEqual(['Intro', code, 'After']);
  });

  it('treats an unclosed fence as one growing block (a reply still streaming code)', () => {
    expect(splitMarkdownBlocks('Intro\n\n~~~\nline\n\nmore')).toEqual(['Intro', '~~~\nline\n\nmore']);
  });

  it('only closes a fence with the same marker at least as long', () => {
    const text = '````\n```\ninner\n```\n````\n\nend';
    expect(splitMarkdownBlocks(text)).toEqual(['````\n```\ninner\n```\n````', 'end']);
  });

  it('keeps an indented continuation with its list item', () => {
    expect(splitMarkdownBlocks('1. one\n\n   more about one\n2. two\n\nNext')).toEqual([
      '1. one\n\n   more about one\n2. two',
      'Next',
    ]);
  });

  it('keeps a table in one block', () => {
    const table = '| a | b |\n|---|---|\n| 1 | 2 |';
    expect(splitMarkdownBlocks(`${table}\n\nnote`)).toEqual([table, 'note']);
  });

  it('returns no blocks for blank text, and ignores runs of blank lines', () => {
    expect(splitMarkdownBlocks('')).toEqual([]);
    expect(splitMarkdownBlocks('\n\n  \n')).toEqual([]);
    expect(splitMarkdownBlocks('a\n\n\n\nb')).toEqual(['a', 'b']);
  });

  it('never changes a completed block as text is appended', () => {
    const full = 'Para one.\n\n```js\nconst x = 1;\n```\n\n| h |\n|---|\n| v |\n\nLast paragraph grows here';
    let previous: string[] = [];
    for (let end = 1; end <= full.length; end++) {
      const blocks = splitMarkdownBlocks(full.slice(0, end));
      // Every block except the last of the previous split must survive unchanged.
      previous.slice(0, -1).forEach((block, index) => expect(blocks[index]).toBe(block));
      previous = blocks;
    }
  });
});
