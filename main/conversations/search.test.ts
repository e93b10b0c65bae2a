import { describe, expect, it } from 'vitest';
import { markdownToPlainText, snippetAround, textMatcher } from './search';

const reply = [
  'Message 2: on **eval harness**, compare the `runs`, see [the notes](https://notes.lab.example/runs).',
  '',
  '```python',
  'def check_1(batch):',
  '```',
  '',
  '| metric | value |',
  '| --- | --- |',
  '| loss | 0.1 |',
  '- item *one* and _two_ with snake_case_name',
  '# Heading',
  '> quoted',
].join('\n');

describe('markdownToPlainText', () => {
  it('keeps the words and drops the marks: emphasis, code, links, headings, quotes, bullets, tables', () => {
    const plain = markdownToPlainText(reply).replace(/\s+/g, ' ').trim();
    expect(plain).toBe(
      'Message 2: on eval harness, compare the runs, see the notes. def check_1(batch): metric value loss 0.1 ' +
        'item one and two with snake_case_name Heading quoted',
    );
  });
});

describe('snippetAround', () => {
  it('shows the text around a hit without Markdown marks', () => {
    const match = textMatcher('compare')?.(reply);
    expect(match).toBeDefined();
    const snippet = snippetAround(reply, match ?? { index: 0, length: 0 });
    expect(snippet).toContain('on eval harness, compare the runs');
    expect(snippet).not.toMatch(/\*\*|`|\]\(|\||---/);
  });

  it('keeps some words before the hit, starting at a word boundary', () => {
    const text = `${'word '.repeat(30)}the hit is here`;
    const snippet = snippetAround(text, textMatcher('hit')?.(text) ?? { index: 0, length: 0 });
    expect(snippet).toMatch(/^…word (word )+the hit is here$/);
  });
});
