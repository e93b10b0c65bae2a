// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../shared/ipc';
import {
  allByRole,
  byRole,
  click,
  fakeLayout,
  flush,
  perform,
  press,
  queryByRole,
  renderApp,
  typeInto,
  type Rendered,
} from '../test/dom';
import { FakeClearance } from '../test/fakeClearance';
import { conversationFixture, entitlementsFixture, mythosDenied } from '../test/fixtures';

let view: Rendered | undefined;
let undoLayout: (() => void) | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
  undoLayout?.();
  undoLayout = undefined;
});

function composer(): HTMLTextAreaElement {
  return byRole(document.body, 'textbox', 'Message') as HTMLTextAreaElement;
}

async function openConversation(fake: FakeClearance, title: string) {
  const item = [...document.querySelectorAll<HTMLElement>('[data-testid="conversation-item"]')].find((el) =>
    el.textContent?.includes(title),
  );
  if (!item) throw new Error(`no conversation item "${title}"`);
  await click(item.querySelector('.conversation-open') as Element);
  await flush();
  return fake;
}

async function sendMessage(text: string) {
  await typeInto(composer(), text);
  await press(composer(), 'Enter');
  await flush();
}

function rows(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>('[data-testid="message-row"]')];
}

describe('chat', () => {
  it('sends to the chosen model, streams the reply in batches of one per frame, and announces the end', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    const app = await renderApp(fake);
    view = app;
    await sendMessage('What is a tokenizer?');
    expect(fake.callsTo('sendChat')).toEqual([{ model: 'haiku-4', content: 'What is a tokenizer?' }]);
    expect(byRole(document.body, 'button', 'Stop generating')).toBeTruthy();

    let updates = 0;
    const unsubscribe = app.store.subscribe(() => updates++);
    await perform(() => {
      fake.streamDelta('A tokenizer ');
      fake.streamDelta('splits text ');
      fake.streamDelta('into tokens.');
    });
    expect(updates).toBe(0);
    expect(app.frames.pending).toBe(1);
    await app.frames.run();
    expect(updates).toBe(1);
    unsubscribe();
    expect(document.body.textContent).toContain('A tokenizer splits text into tokens.');

    await perform(() => fake.finishStream('complete'));
    expect(queryByRole(document.body, 'button', 'Stop generating')).toBeNull();
    expect(document.querySelector('[data-testid="announcer"]')?.textContent).toBe('Response complete.');
    expect(byRole(document.body, 'heading', 'What is a tokenizer?')).toBeTruthy();
  });

  it('stops a streaming reply from the Stop button and keeps what was written', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    view = await renderApp(fake);
    await sendMessage('Write a long essay');
    await perform(() => fake.streamDelta('Once upon'));
    await click(byRole(document.body, 'button', 'Stop generating'));
    await flush();
    expect(fake.callsTo('stopChat')).toHaveLength(1);
    expect(document.body.textContent).toContain('Once upon');
    expect(document.body.textContent).toContain('Stopped before the end.');
  });

  it('shows a stream cut by the gateway inline, with the reason, keeping the partial reply', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    view = await renderApp(fake);
    await sendMessage('Tell me about Mythos');
    await perform(() => fake.streamDelta('Partial answer'));
    await perform(() =>
      fake.finishStream('error', {
        code: 'MODEL_DENIED',
        reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        message: 'Access to Haiku 4 was revoked by policy ec-2026-06-us-persons.',
      }),
    );
    const reply = rows().at(-1) as HTMLElement;
    expect(reply.textContent).toContain('Partial answer');
    expect(reply.textContent).toContain('Restricted by export-control directive.');
    expect(reply.textContent).toContain('Access to Haiku 4 was revoked by policy ec-2026-06-us-persons.');
    expect(reply.textContent).toContain('The partial reply above was kept.');
    // Haiku 4 is still allowed in the document, so there is no rule to explain yet.
    expect(queryByRole(reply, 'button', 'Why?')).toBeNull();
    await perform(() =>
      fake.setEntitlements({
        ...entitlementsFixture,
        models: entitlementsFixture.models.map((m) => (m.id === 'haiku-4' ? { ...mythosDenied, id: 'haiku-4' } : m)),
      }),
    );
    await click(byRole(rows().at(-1) as HTMLElement, 'button', 'Why?'));
    expect(byRole(document.body, 'dialog').textContent).toContain('ec-2026-06-us-persons');
    expect(document.querySelector('[data-testid="announcer"]')?.textContent).toMatch(/^Response interrupted/);
  });

  it('names the reason of a cut once, with its rule, and says when the model is available again', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    view = await renderApp(fake);
    await sendMessage('Tell me about tokenizers');
    await perform(() => fake.streamDelta('Partial answer'));
    const suspended = {
      status: 'denied' as const,
      reason: 'MODEL_SUSPENDED' as const,
      title: 'Suspended by directive EC-2026-11',
      policy: 'ec-2026-11-withdrawn',
      message: 'Haiku 4 is withdrawn for everyone while directive EC-2026-11 is reviewed.',
    };
    await perform(() => {
      fake.setEntitlements({
        ...entitlementsFixture,
        models: entitlementsFixture.models.map((m) => (m.id === 'haiku-4' ? { ...m, ...suspended } : m)),
      });
      fake.finishStream('error', {
        code: 'MODEL_DENIED',
        reason: 'MODEL_SUSPENDED',
        policy: 'ec-2026-11-withdrawn',
        message: suspended.message,
      });
    });
    const reply = rows().at(-1) as HTMLElement;
    const notice = document.querySelector('[data-testid="model-locked"]') as HTMLElement;
    const said = `${reply.textContent} ${notice.textContent}`;
    expect(reply.textContent).toContain('Reply stopped by your organisation’s policy: Model suspended.');
    expect(reply.textContent).toContain('Rule: ec-2026-11-withdrawn.');
    expect(byRole(reply, 'button', 'Why?')).toBeTruthy();
    // Once on the screen: the reply names the reason, the notice below only offers the next step.
    expect(said.split(suspended.message)).toHaveLength(2);
    expect(said).not.toContain(suspended.title);
    expect(notice.textContent).toContain('Haiku 4 is unavailable, as the reply above says.');
    expect(queryByRole(notice, 'button', 'Why?')).toBeNull();
    expect(byRole(notice, 'button', 'Continue with Echo')).toBeTruthy();

    await perform(() => fake.setEntitlements({ ...entitlementsFixture, ver: 4183 }));
    expect(document.querySelector('[data-testid="model-locked"]')).toBeNull();
    expect((rows().at(-1) as HTMLElement).textContent).toContain('Haiku 4 is available again.');
    expect(queryByRole(rows().at(-1) as HTMLElement, 'button', 'Why?')).toBeNull();
    expect(byRole(document.body, 'region', 'Notifications').textContent).toContain('Haiku 4 is available again.');
    expect(composer().disabled).toBe(false);
  });

  it('locks the composer when the open conversation’s model is revoked and continues with a permitted one', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    fake.addConversation(conversationFixture());
    view = await renderApp(fake);
    await openConversation(fake, 'Tokenizer question');
    expect(composer().disabled).toBe(false);

    await perform(() =>
      fake.setEntitlements({
        ...entitlementsFixture,
        models: entitlementsFixture.models.map((m) =>
          m.id === 'haiku-4'
            ? { ...m, status: 'denied', reason: 'MODEL_SUSPENDED', title: 'Suspended by directive EC-2026-09' }
            : m,
        ),
      }),
    );
    const notice = document.querySelector('[data-testid="model-locked"]') as HTMLElement;
    expect(notice.textContent).toContain('Haiku 4 is unavailable: Suspended by directive EC-2026-09.');
    expect(notice.textContent).toContain('Your conversation is kept.');
    expect(composer().disabled).toBe(true);
    expect(rows().map((row) => row.textContent)).toEqual([
      expect.stringContaining('What is a tokenizer?'),
      expect.stringContaining('A tokenizer splits text into tokens.'),
    ]);

    await click(byRole(notice, 'button', 'Why?'));
    expect(byRole(document.body, 'dialog', 'Why is Haiku 4 unavailable?').textContent).toContain('Suspended');
    await press(document.activeElement as Element, 'Escape');

    const choice = byRole(notice, 'combobox', 'Continue with') as HTMLSelectElement;
    expect([...choice.options].map((o) => o.textContent)).toEqual(['Echo (Demo)']);
    await click(byRole(notice, 'button', 'Continue with Echo'));
    expect(document.querySelector('[data-testid="model-locked"]')).toBeNull();
    expect(composer().disabled).toBe(false);
    await sendMessage('And now?');
    expect(fake.callsTo('sendChat').at(-1)).toEqual({ conversationId: 'c1', model: 'echo-demo', content: 'And now?' });
  });

  it('regenerates the last reply and resends an edited message in place', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    fake.addConversation(conversationFixture());
    view = await renderApp(fake);
    await openConversation(fake, 'Tokenizer question');

    await click(byRole(document.body, 'button', 'Regenerate'));
    expect(fake.callsTo('sendChat').at(-1)).toEqual({
      conversationId: 'c1',
      model: 'haiku-4',
      content: 'What is a tokenizer?',
      replaceFromMessageId: 'm1',
    });
    await perform(() => fake.finishStream('complete'));

    const firstUserRow = rows()[0] as HTMLElement;
    await click(byRole(firstUserRow, 'button', 'Edit and resend'));
    const editor = byRole(document.body, 'textbox', 'Edit message') as HTMLTextAreaElement;
    await typeInto(editor, 'What is a byte-pair tokenizer?');
    await click(byRole(document.body, 'button', 'Save and send'));
    const last = fake.callsTo('sendChat').at(-1);
    expect(last?.content).toBe('What is a byte-pair tokenizer?');
    expect(last?.replaceFromMessageId).toMatch(/^u-/);
  });

  it('copies a message', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    fake.addConversation(conversationFixture());
    const app = await renderApp(fake);
    view = app;
    await openConversation(fake, 'Tokenizer question');
    await click(byRole(document.body, 'button', 'Copy your message'));
    expect(app.clipboard).toEqual(['What is a tokenizer?']);
  });

  it('shows a reply’s token usage quietly next to its time, and none on the user’s message', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    const base = conversationFixture();
    fake.addConversation({
      ...base,
      messages: base.messages.map((message) =>
        message.role === 'assistant'
          ? { ...message, usage: { promptTokens: 1200, completionTokens: 34, totalTokens: 1234 } }
          : message,
      ),
    });
    view = await renderApp(fake);
    await openConversation(fake, 'Tokenizer question');
    const usage = [...document.querySelectorAll('.message-usage')];
    expect(usage.map((element) => element.textContent)).toEqual([`${(1234).toLocaleString()} tokens`]);
    expect(usage[0]?.closest('.message')?.classList.contains('message-assistant')).toBe(true);
    expect(usage[0]?.getAttribute('title')).toBe(`${(1200).toLocaleString()} tokens in the prompt, 34 in the reply`);
  });

  it('mounts only the visible rows of a 10,000-message conversation', async () => {
    undoLayout = fakeLayout(600, 100);
    const fake = new FakeClearance();
    const messages: ChatMessage[] = Array.from({ length: 10_000 }, (_, i) => ({
      id: `m${i}`,
      role: i % 2 ? 'assistant' : 'user',
      content: `Message number ${i}`,
      createdAt: '2026-11-27T09:00:00Z',
      model: 'haiku-4',
      status: i % 2 ? 'complete' : undefined,
    }));
    fake.addConversation(conversationFixture({ id: 'long', title: 'Long history', messages }));
    view = await renderApp(fake);
    await openConversation(fake, 'Long history');
    await flush(20);
    const mounted = rows().length;
    expect(mounted).toBeGreaterThan(0);
    expect(mounted).toBeLessThan(40);
    expect(document.body.textContent).toContain('Message number 9999');
    expect(document.body.textContent).not.toContain('Message number 5000');
  });

  it('jumps to the first message on Home and back to the last on End, by index', async () => {
    undoLayout = fakeLayout(600, 100);
    const fake = new FakeClearance();
    const messages: ChatMessage[] = Array.from({ length: 10_000 }, (_, i) => ({
      id: `m${i}`,
      role: i % 2 ? 'assistant' : 'user',
      content: `Message number ${i}.`,
      createdAt: '2026-11-27T09:00:00Z',
      model: 'haiku-4',
      status: i % 2 ? 'complete' : undefined,
    }));
    fake.addConversation(conversationFixture({ id: 'long', title: 'Long history', messages }));
    view = await renderApp(fake);
    await openConversation(fake, 'Long history');
    await flush(20);
    const list = document.querySelector('[data-testid="message-list"]') as HTMLElement;

    const home = await press(list, 'Home');
    await flush(20);
    expect(home.defaultPrevented).toBe(true);
    expect(document.body.textContent).toContain('Message number 0.');
    expect(document.body.textContent).not.toContain('Message number 9999.');
    expect(rows().length).toBeLessThan(40);

    const end = await press(list, 'End');
    await flush(20);
    expect(end.defaultPrevented).toBe(true);
    expect(document.body.textContent).toContain('Message number 9999.');
    expect(document.body.textContent).not.toContain('Message number 0.');
  });

  it('exports as Markdown and JSON, downloading the content when main did not save it', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    fake.addConversation(conversationFixture());
    const app = await renderApp(fake);
    view = app;
    await openConversation(fake, 'Tokenizer question');
    await click(byRole(document.body, 'button', 'Export'));
    await click(byRole(document.body, 'menuitem', 'Export as Markdown'));
    await click(byRole(document.body, 'button', 'Export'));
    await click(byRole(document.body, 'menuitem', 'Export as JSON'));
    expect(fake.callsTo('exportConversation')).toEqual([
      { id: 'c1', format: 'markdown' },
      { id: 'c1', format: 'json' },
    ]);
    expect(app.downloads.map((file) => [file.fileName, file.mimeType])).toEqual([
      ['Tokenizer question.md', 'text/markdown'],
      ['Tokenizer question.json', 'application/json'],
    ]);
    expect(JSON.parse(app.downloads[1]?.content ?? '').id).toBe('c1');
  });

  it('does not download when main saved the export itself', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance({ exportSavesTo: '/home/ada/Tokenizer question.md' });
    fake.addConversation(conversationFixture());
    const app = await renderApp(fake);
    view = app;
    await openConversation(fake, 'Tokenizer question');
    await click(byRole(document.body, 'button', 'Export'));
    await click(byRole(document.body, 'menuitem', 'Export as Markdown'));
    expect(app.downloads).toEqual([]);
    expect(document.body.textContent).toContain('Exported to /home/ada/Tokenizer question.md.');
  });

  it('says why a send was refused and keeps the text', async () => {
    undoLayout = fakeLayout();
    const fake = new FakeClearance();
    fake.handle('sendChat', () => ({
      ok: false,
      error: { code: 'GATEWAY_UNAVAILABLE', message: 'Clearance cannot reach the gateway.' },
    }));
    view = await renderApp(fake);
    await sendMessage('hello');
    expect(byRole(document.body, 'alert').textContent).toContain('Clearance cannot reach the gateway.');
    expect(composer().value).toBe('hello');
    expect(allByRole(document.body, 'article')).toHaveLength(0);
  });
});
