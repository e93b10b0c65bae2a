import { act, type ReactElement } from 'react';
import { createRoot } from 'react-dom/client';
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

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Clicks an element as a user would (mousedown, mouseup, click), then lets the result settle. */
export async function click(element: Element): Promise<void> {
  await act(async () => {
    element.dispatchEvent(new MouseEvent('mousedown', { bubbles: true, cancelable: true }));
    element.dispatchEvent(new MouseEvent('mouseup', { bubbles: true, cancelable: true }));
    element.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true }));
    await settle();
  });
}

/** Presses a key on an element; returns the event so a test can check `defaultPrevented`. */
export async function press(element: Element, key: string, init: KeyboardEventInit = {}): Promise<KeyboardEvent> {
  const event = new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true, ...init });
  await act(async () => {
    element.dispatchEvent(event);
    await settle();
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
    await settle();
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
  region: 'section[aria-label], section[aria-labelledby]',
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
 * Gives jsdom a layout for the message list: the list is `height` tall, each row `rowHeight`, and
 * `scrollTo` moves `scrollTop` and fires `scroll` as a browser does, so the virtualizer mounts
 * what a real window would. Returns the undo.
 */
export function fakeLayout(height = 600, rowHeight = 100): () => void {
  const isList = (element: Element) => element instanceof HTMLElement && element.dataset.testid === 'message-list';
  const isRow = (element: Element) => element instanceof HTMLElement && element.dataset.testid === 'message-row';
  const offsets = new WeakMap<Element, number>();
  const contentHeight = (element: Element) =>
    parseFloat((element.firstElementChild as HTMLElement | null)?.style.height ?? '0') || 0;
  const saved = (['clientHeight', 'offsetHeight', 'scrollHeight', 'scrollTop', 'scrollTo'] as const).map((name) => ({
    name,
    owner: name === 'offsetHeight' ? HTMLElement.prototype : Element.prototype,
  }));
  const originals = saved.map(({ name, owner }) => ({
    name,
    owner,
    descriptor: Object.getOwnPropertyDescriptor(owner, name),
  }));
  Object.defineProperty(Element.prototype, 'clientHeight', {
    configurable: true,
    get(this: Element) {
      return isList(this) ? height : 0;
    },
  });
  Object.defineProperty(HTMLElement.prototype, 'offsetHeight', {
    configurable: true,
    get(this: HTMLElement) {
      return isRow(this) ? rowHeight : 0;
    },
  });
  Object.defineProperty(Element.prototype, 'scrollHeight', {
    configurable: true,
    get(this: Element) {
      return isList(this) ? Math.max(height, contentHeight(this)) : 0;
    },
  });
  Object.defineProperty(Element.prototype, 'scrollTop', {
    configurable: true,
    get(this: Element) {
      return offsets.get(this) ?? 0;
    },
    set(this: Element, value: number) {
      offsets.set(this, value);
    },
  });
  Object.defineProperty(Element.prototype, 'scrollTo', {
    configurable: true,
    value(this: Element, options: ScrollToOptions) {
      const max = Math.max(0, this.scrollHeight - this.clientHeight);
      offsets.set(this, Math.min(max, Math.max(0, options.top ?? 0)));
      this.dispatchEvent(new Event('scroll'));
    },
  });
  return () => {
    for (const { name, owner, descriptor } of originals) {
      if (descriptor) Object.defineProperty(owner, name, descriptor);
      else delete (owner as unknown as Record<string, unknown>)[name];
    }
  };
}

/** Runs something that updates the app from outside React (a desktop event), then lets it settle. */
export async function perform(action: () => void | Promise<void>): Promise<void> {
  await act(async () => {
    await action();
    await settle();
  });
}
