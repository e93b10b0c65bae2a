import { bench, describe } from 'vitest';
import { splitMarkdownBlocks } from '../renderer/markdown/blocks';

/** Splitting a streamed reply into blocks, which runs on every rendered frame while streaming. */
const paragraph = 'The gateway evaluates **live policy** on every call, so a stale document unlocks nothing. ';
const reply = Array.from({ length: 60 }, (_, i) =>
  i % 5 === 0
    ? '```ts\nconst x = 1;\nconsole.log(x);\n```'
    : i % 7 === 0
      ? '| a | b |\n|---|---|\n| 1 | 2 |'
      : paragraph.repeat(4),
).join('\n\n');

describe('markdown', () => {
  bench(`split a ${Math.round(reply.length / 1024)} KB reply into blocks`, () => {
    splitMarkdownBlocks(reply);
  });
});
