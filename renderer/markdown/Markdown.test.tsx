// @vitest-environment jsdom
import { createElement } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreProvider } from '../state/context';
import { byRole, click, flush, render, type Rendered, createTestStore } from '../test/dom';
import { FakeClearance } from '../test/fakeClearance';
import { HighlighterProvider, type RehypePlugins } from './highlighter';
import { MessageMarkdown } from './Markdown';

const rendered = vi.hoisted(() => [] as string[]);

vi.mock('react-markdown', async (importOriginal) => {
  const actual = await importOriginal<typeof import('react-markdown')>();
  function CountingMarkdown(props: Parameters<typeof actual.default>[0]) {
    rendered.push(String(props.children));
    return createElement(actual.default, props);
  }
  return { ...actual, default: CountingMarkdown };
});

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
  rendered.length = 0;
});

function harness(fake = new FakeClearance(), load?: () => Promise<RehypePlugins>) {
  const app = createTestStore(fake);
  const wrap = (text: string) => (
    <StoreProvider store={app.store}>
      <HighlighterProvider load={load ?? (() => new Promise(() => undefined))}>
        <MessageMarkdown text={text} />
      </HighlighterProvider>
    </StoreProvider>
  );
  return { app, wrap, fake };
}

describe('MessageMarkdown', () => {
  it('re-renders only the growing last block while text streams in', async () => {
    const { wrap } = harness();
    const steps = [
      '# Plan',
      '# Plan\n\nFirst step',
      '# Plan\n\nFirst step done.\n\nSec',
      '# Plan\n\nFirst step done.\n\nSecond',
    ];
    view = await render(wrap(steps[0] as string));
    for (const step of steps.slice(1)) await view.rerender(wrap(step));
    const count = (text: string) => rendered.filter((block) => block === text).length;
    expect(count('# Plan')).toBe(1);
    expect(count('First step done.')).toBe(1);
    expect(count('Sec')).toBe(1);
    expect(count('Second')).toBe(1);
    expect(view.container.querySelector('h1')?.textContent).toBe('Plan');
  });

  it('renders GFM tables', async () => {
    const { wrap } = harness();
    view = await render(wrap('| Model | Access |\n|---|---|\n| Haiku 4 | yes |'));
    const cells = [...view.container.querySelectorAll('td')].map((cell) => cell.textContent);
    expect(cells).toEqual(['Haiku 4', 'yes']);
  });

  it('shows raw HTML as text, never as elements', async () => {
    const { wrap } = harness();
    view = await render(wrap('Hello <img src=x onerror=alert(1)> and <script>alert(2)</script>'));
    expect(view.container.querySelector('img, script')).toBeNull();
    expect(view.container.textContent).toContain('<img src=x onerror=alert(1)>');
  });

  it('drops javascript: URLs and opens other links through openExternal, never navigating', async () => {
    const { wrap, fake } = harness();
    view = await render(wrap('[docs](https://docs.lab.example/a) and [bad](javascript:alert(1))'));
    const links = [...view.container.querySelectorAll('a')];
    expect(links.map((link) => link.getAttribute('href'))).toEqual(['https://docs.lab.example/a', '']);
    const event = new MouseEvent('click', { bubbles: true, cancelable: true });
    links[0]?.dispatchEvent(event);
    await flush();
    expect(event.defaultPrevented).toBe(true);
    expect(fake.callsTo('openExternal')).toEqual([{ url: 'https://docs.lab.example/a' }]);
  });

  it('does not load remote images; it shows them as links', async () => {
    const { wrap } = harness();
    view = await render(wrap('![chart](https://tracker.example/pixel.png)'));
    expect(view.container.querySelector('img')).toBeNull();
    expect(view.container.textContent).toContain('[Image: chart]');
  });

  it('gives code blocks a copy button that copies the code', async () => {
    const { wrap, app } = harness();
    view = await render(wrap('```ts\nconst answer = 42;\n```'));
    expect(view.container.querySelector('.code-block-language')?.textContent).toBe('ts');
    await click(byRole(view.container, 'button', 'Copy code'));
    expect(app.clipboard).toEqual(['const answer = 42;']);
  });

  it('loads highlighting only when a code block with a language appears', async () => {
    const load = vi.fn(async () => (await import('./highlighter')).loadRehypeHighlight());
    const { wrap } = harness(new FakeClearance(), load);
    view = await render(wrap('Just prose.'));
    await flush();
    expect(load).not.toHaveBeenCalled();
    await view.rerender(wrap('Just prose.\n\n```js\nconst x = 1;\n```'));
    // The highlighter is a lazily imported chunk: on a cold machine its first import takes a while.
    for (let waited = 0; waited < 10_000 && !view.container.querySelector('code .hljs-keyword'); waited += 50) {
      await flush(50);
    }
    expect(load).toHaveBeenCalledTimes(1);
    expect(view.container.querySelector('code .hljs-keyword')?.textContent).toBe('const');
  });
});
