import { act, type ReactElement } from 'react';
import { createRoot } from 'react-dom/client';
import { vi } from 'vitest';
import { App } from '../App';
import type { HighlighterLoader } from '../markdown/highlighter';
import { memoryPreferences } from '../state/preferences';
import { createAppStore, type AppStore, type DownloadFile } from '../state/store';
import type { FakeClearance } from './fakeClearance';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** A rendered tree and how to take it down. */
export interface Rendered {
  readonly container: HTMLElement;
  rerender(ui: ReactElement): Promise<void>;
  unmount(): Promise<void>;
}

/** Renders into a fresh container attached to the document. */
export async function render(ui: ReactElement): Promise<Rendered> {
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container);
  await act(async () => root.render(ui));
  return {
    container,
    rerender: async (next) => act(async () => root.render(next)),
    unmount: async () => {
      await act(async () => root.unmount());
      container.remove();
    },
  };
}

/** Lets pending promises, effects and zero-delay timers settle. */
export async function flush(ms = 0): Promise<void> {
  await act(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
  });
}

/** Clicks an element as a user would (mousedown, mouseup, click). */
export async function click(element: Element): Promise<void> {
  await act(async () => {
    element.dispatchEvent(new MouseEvent('mousedown', { bubbles: true, cancelable: true }));
    element.dispatchEvent(new MouseEvent('mouseup', { bubbles: true, cancelable: true }));
    element.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true }));
  });
}

/** Presses a key on an element; returns the event so a test can check `defaultPrevented`. */
export async function press(element: Element, key: string, init: KeyboardEventInit = {}): Promise<KeyboardEvent> {
  const event = new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true, ...init });
  await act(async () => {
    element.dispatchEvent(event);
  });
  return event;
}

/** Types into a React-controlled input or textarea (replacing its value). */
export async function typeInto(element: HTMLInputElement | HTMLTextAreaElement, value: string): Promise<void> {
  const prototype = element instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  const setter = Object.getOwnPropertyDescriptor(prototype, 'value')?.set;
  await act(async () => {
    setter?.call(element, value);
    element.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

/** Moves focus to an element inside act. */
export async function focus(element: HTMLElement): Promise<void> {
  await act(async () => element.focus());
}

const implicitRoles: Readonly<Record<string, string>> = {
  button: 'button',
  textbox: 'textarea, input:not([type]), input[type="text"]',
  searchbox: 'input[type="search"]',
  link: 'a[href]',
  heading: 'h1, h2, h3, h4, h5, h6',
  table: 'table',
  row: 'tr',
  combobox: 'select',
  article: 'article',
  navigation: 'nav',
  main: 'main',
  banner: 'body > div > header, header.app-header',
  list: 'ul, ol',
  listitem: 'li',
};

function textWithoutHidden(element: Element): string {
  let text = '';
  for (const node of element.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) text += node.textContent ?? '';
    else if (node instanceof Element && node.getAttribute('aria-hidden') !== 'true' && !node.hasAttribute('hidden')) {
      text += textWithoutHidden(node);
    }
  }
  return text;
}

/** The accessible name, computed the simple way the app's markup needs (label, labelledby, content). */
export function accessibleName(element: Element): string {
  const label = element.getAttribute('aria-label');
  if (label) return label.trim();
  const labelledBy = element.getAttribute('aria-labelledby');
  if (labelledBy) {
    return labelledBy
      .split(/\s+/)
      .map((id) => element.ownerDocument.getElementById(id))
      .map((node) => (node ? textWithoutHidden(node) : ''))
      .join(' ')
      .replace(/\s+/g, ' ')
      .trim();
  }
  if (element.id) {
    const forLabel = element.ownerDocument.querySelector(`label[for="${element.id}"]`);
    if (forLabel) return textWithoutHidden(forLabel).replace(/\s+/g, ' ').trim();
  }
  return textWithoutHidden(element).replace(/\s+/g, ' ').trim();
}

/** Every element with a role (explicit or implicit) whose accessible name matches. */
export function allByRole(root: ParentNode, role: string, name?: string | RegExp): HTMLElement[] {
  const selector = [`[role="${role}"]`, implicitRoles[role]].filter(Boolean).join(', ');
  return [...root.querySelectorAll<HTMLElement>(selector)].filter((element) => {
    if (element.closest('[hidden]')) return false;
    const explicit = element.getAttribute('role');
    if (explicit && explicit !== role) return false;
    if (name === undefined) return true;
    const accessible = accessibleName(element);
    return typeof name === 'string' ? accessible === name : name.test(accessible);
  });
}

/** The one element with a role and name; throws a readable error when there is none or several. */
export function byRole(root: ParentNode, role: string, name?: string | RegExp): HTMLElement {
  const found = allByRole(root, role, name);
  if (found.length !== 1) {
    const names = allByRole(root, role).map((element) => `"${accessibleName(element)}"`);
    throw new Error(`Expected one ${role} named ${String(name)}, found ${found.length}. ${role}s: ${names.join(', ')}`);
  }
  return found[0] as HTMLElement;
}

/** The one element with a role and name, or null. */
export function queryByRole(root: ParentNode, role: string, name?: string | RegExp): HTMLElement | null {
  const found = allByRole(root, role, name);
  return found.length === 1 ? (found[0] as HTMLElement) : null;
}

/** Animation frames the store asked for, run when the test says so. */
export class ManualFrames {
  private queue: (() => void)[] = [];

  readonly request = (callback: () => void): void => {
    this.queue.push(callback);
  };

  get pending(): number {
    return this.queue.length;
  }

  async run(): Promise<void> {
    await act(async () => {
      const callbacks = this.queue.splice(0);
      callbacks.forEach((callback) => callback());
    });
  }
}

/** A store wired to a fake desktop, with frames, downloads and the clipboard under test control. */
export interface TestApp {
  readonly store: AppStore;
  readonly frames: ManualFrames;
  readonly downloads: DownloadFile[];
  readonly clipboard: string[];
}

/** Builds a store over the fake, as the entry point would over `window.clearance`. */
export function createTestStore(fake: FakeClearance): TestApp {
  const frames = new ManualFrames();
  const downloads: DownloadFile[] = [];
  const clipboard: string[] = [];
  const store = createAppStore({
    api: fake.api,
    preferences: memoryPreferences(),
    requestFrame: frames.request,
    download: (file) => downloads.push(file),
    writeClipboard: async (text) => {
      clipboard.push(text);
    },
  });
  return { store, frames, downloads, clipboard };
}

const noHighlighting: HighlighterLoader = () => new Promise(() => undefined);

/** Renders the whole app over a fake desktop and waits for its first state. */
export async function renderApp(
  fake: FakeClearance,
  options: { readonly loadHighlighter?: HighlighterLoader } = {},
): Promise<TestApp & Rendered> {
  const app = createTestStore(fake);
  const rendered = await render(<App store={app.store} loadHighlighter={options.loadHighlighter ?? noHighlighting} />);
  await flush();
  await flush();
  return { ...app, ...rendered };
}

/**
 * Gives jsdom a layout: the message list is `height` tall and each row `rowHeight`, so the
 * virtualizer mounts what a real window would. Returns the undo.
 */
export function fakeLayout(height = 600, rowHeight = 100): () => void {
  const client = Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientHeight');
  const rect = Object.getOwnPropertyDescriptor(Element.prototype, 'getBoundingClientRect');
  Object.defineProperty(HTMLElement.prototype, 'clientHeight', {
    configurable: true,
    get(this: HTMLElement) {
      return this.dataset.testid === 'message-list' ? height : 0;
    },
  });
  Object.defineProperty(Element.prototype, 'getBoundingClientRect', {
    configurable: true,
    value(this: Element) {
      const h = this instanceof HTMLElement && this.dataset.testid === 'message-row' ? rowHeight : 0;
      return { x: 0, y: 0, top: 0, left: 0, right: 800, bottom: h, width: 800, height: h, toJSON: () => ({}) };
    },
  });
  const scroll = Object.getOwnPropertyDescriptor(Element.prototype, 'scrollTo');
  Object.defineProperty(Element.prototype, 'scrollTo', { configurable: true, value: vi.fn() });
  return () => {
    if (client) Object.defineProperty(HTMLElement.prototype, 'clientHeight', client);
    if (rect) Object.defineProperty(Element.prototype, 'getBoundingClientRect', rect);
    if (scroll) Object.defineProperty(Element.prototype, 'scrollTo', scroll);
    else delete (Element.prototype as { scrollTo?: unknown }).scrollTo;
  };
}
