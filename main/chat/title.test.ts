import { describe, expect, it } from 'vitest';
import { titleFromMessage } from './title';

describe('titleFromMessage', () => {
  it('takes the first line of prose, without Markdown markers', () => {
    expect(titleFromMessage('\n\n## Why does *loss* spike?\nsecond line')).toBe('Why does loss spike?');
    expect(titleFromMessage('```python\nprint(1)\n```\nFix this `code`')).toBe('Fix this code');
    expect(titleFromMessage('- 1. item')).toBe('item');
  });

  it('cuts a long line at a word and marks the cut', () => {
    const title = titleFromMessage(`Compare ${'tokenizer '.repeat(20)}`);
    expect(title.length).toBeLessThanOrEqual(61);
    expect(title.endsWith('tokenizer…')).toBe(true);
  });

  it('falls back to the default title for blank or fence-only text', () => {
    expect(titleFromMessage('   \n ')).toBe('New chat');
    expect(titleFromMessage('```\nonly code\n```')).toBe('New chat');
  });
});
