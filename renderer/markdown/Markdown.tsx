import { memo, useEffect, useMemo, type ComponentPropsWithoutRef, type MouseEvent } from 'react';
import Markdown, { type Components, type ExtraProps } from 'react-markdown';
import remarkGfm from 'remark-gfm';
import { CopyIcon } from '../components/icons';
import { useActions } from '../state/context';
import { splitMarkdownBlocks } from './blocks';
import { useHighlightPlugins, useRequestHighlighting } from './highlighter';

interface HastNode {
  readonly type: string;
  readonly value?: string;
  readonly tagName?: string;
  readonly properties?: Readonly<Record<string, unknown>>;
  readonly children?: readonly HastNode[];
}

function textOf(node: HastNode | undefined): string {
  if (!node) return '';
  if (typeof node.value === 'string') return node.value;
  return (node.children ?? []).map(textOf).join('');
}

function languageOf(node: HastNode | undefined): string | undefined {
  const code = node?.children?.find((child) => child.tagName === 'code');
  const classes = code?.properties?.className;
  if (!Array.isArray(classes)) return undefined;
  const language = classes.find((name): name is string => typeof name === 'string' && name.startsWith('language-'));
  return language?.slice('language-'.length);
}

/** A link from a message: opened by main (which applies the allow-list), never in this window. */
function MessageLink({ href, children, title }: ComponentPropsWithoutRef<'a'> & ExtraProps) {
  const { openExternal } = useActions();
  const open = (event: MouseEvent<HTMLAnchorElement>) => {
    event.preventDefault();
    if (href) void openExternal(href);
  };
  return (
    <a
      href={href}
      title={title ?? href}
      rel="noreferrer noopener"
      onClick={open}
      onAuxClick={(event) => {
        if (event.button === 1) open(event);
      }}
    >
      {children}
    </a>
  );
}

/** An image from a message: never fetched (it could track the reader); shown as a link instead. */
function MessageImage({ src, alt }: ComponentPropsWithoutRef<'img'> & ExtraProps) {
  const url = typeof src === 'string' ? src : undefined;
  return (
    <span className="md-image">
      [Image{alt ? `: ${alt}` : ''}] {url ? <MessageLink href={url}>{url}</MessageLink> : null}
    </span>
  );
}

/** A fenced code block with its language, a Copy button, and highlighting once it has loaded. */
function CodeBlock({ node, children }: ComponentPropsWithoutRef<'pre'> & ExtraProps) {
  const hast = node as unknown as HastNode | undefined;
  const language = languageOf(hast);
  const request = useRequestHighlighting();
  const { copy } = useActions();
  useEffect(() => {
    if (language) request();
  }, [language, request]);
  return (
    <div className="code-block">
      <div className="code-block-header">
        <span className="code-block-language">{language ?? 'text'}</span>
        <button
          type="button"
          className="button button-ghost button-small"
          onClick={() => void copy(textOf(hast).replace(/\n$/, ''), 'Code')}
        >
          <CopyIcon /> Copy code
        </button>
      </div>
      {/* Focusable so keyboard users can scroll long lines. */}
      <pre tabIndex={0}>{children}</pre>
    </div>
  );
}

/** A GFM table, scrollable sideways when wide. */
function ScrollingTable({ children }: ComponentPropsWithoutRef<'table'> & ExtraProps) {
  return (
    <div className="table-scroll" tabIndex={0} role="group" aria-label="Table">
      <table>{children}</table>
    </div>
  );
}

const components: Components = {
  a: MessageLink,
  img: MessageImage,
  pre: CodeBlock,
  table: ScrollingTable,
};

const remarkPlugins = [remarkGfm];

/**
 * One top-level markdown block, rendered by react-markdown without raw HTML.
 *
 * Memoized on its text: a completed block never re-renders while the reply around it streams.
 * HTML in the text is shown as text (no rehype-raw), and unsafe URLs are dropped by
 * react-markdown's default URL transform.
 */
export const MarkdownBlock = memo(function MarkdownBlock({ text }: { readonly text: string }) {
  const plugins = useHighlightPlugins();
  return (
    <Markdown remarkPlugins={remarkPlugins} rehypePlugins={plugins} components={components}>
      {text}
    </Markdown>
  );
});

/**
 * A message's markdown, split into blocks so a streaming reply re-renders only its last block.
 */
export const MessageMarkdown = memo(function MessageMarkdown({ text }: { readonly text: string }) {
  const blocks = useMemo(() => splitMarkdownBlocks(text), [text]);
  return (
    <div className="markdown">
      {blocks.map((block, index) => (
        // Blocks only ever grow at the end, so the index is a stable identity.
        <MarkdownBlock key={index} text={block} />
      ))}
    </div>
  );
});
