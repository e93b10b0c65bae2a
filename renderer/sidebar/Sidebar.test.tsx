// @vitest-environment jsdom
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { byRole, click, fakeLayout, flush, press, queryByRole, renderApp, typeInto, type Rendered } from '../test/dom';
import { FakeClearance } from '../test/fakeClearance';
import { conversationFixture } from '../test/fixtures';

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

function titles(): string[] {
  return [...document.querySelectorAll('[data-testid="conversation-item"] .conversation-title')].map(
    (el) => el.textContent ?? '',
  );
}

function seeded(): FakeClearance {
  const fake = new FakeClearance();
  fake.addConversation(conversationFixture());
  fake.addConversation(
    conversationFixture({
      id: 'c2',
      title: 'Grant proposal',
      updatedAt: '2026-11-27T08:00:00Z',
      messages: [{ id: 'g1', role: 'user', content: 'Draft the budget section', createdAt: '2026-11-27T08:00:00Z' }],
    }),
  );
  return fake;
}

describe('conversation sidebar', () => {
  it('lists conversations in a labelled navigation landmark, newest first', async () => {
    view = await renderApp(seeded());
    expect(byRole(document.body, 'navigation', 'Conversations')).toBeTruthy();
    expect(titles()).toEqual(['Tokenizer question', 'Grant proposal']);
  });

  it('searches titles and message text after the user pauses typing', async () => {
    const fake = seeded();
    view = await renderApp(fake);
    const search = byRole(document.body, 'searchbox', 'Search conversations') as HTMLInputElement;
    await typeInto(search, 'bud');
    await typeInto(search, 'budget');
    expect(fake.callsTo('listConversations').filter((call) => call.query)).toEqual([]);
    await flush(300);
    expect(fake.callsTo('listConversations').filter((call) => call.query)).toEqual([{ query: 'budget' }]);
    expect(titles()).toEqual(['Grant proposal']);
    expect(document.body.textContent).toContain('Draft the budget section');
    await typeInto(search, 'nothing like this');
    await flush(300);
    expect(document.body.textContent).toContain('No conversations match “nothing like this”.');
  });

  it('renames inline: Enter saves, Escape cancels', async () => {
    const fake = seeded();
    view = await renderApp(fake);
    await click(byRole(document.body, 'button', 'Rename “Grant proposal”'));
    const input = byRole(document.body, 'textbox', 'Conversation title') as HTMLInputElement;
    expect(document.activeElement).toBe(input);
    await typeInto(input, 'Grant proposal v2');
    await press(input, 'Enter');
    await flush();
    expect(fake.callsTo('renameConversation')).toEqual([{ id: 'c2', title: 'Grant proposal v2' }]);
    expect(titles()).toContain('Grant proposal v2');

    await click(byRole(document.body, 'button', 'Rename “Tokenizer question”'));
    const again = byRole(document.body, 'textbox', 'Conversation title') as HTMLInputElement;
    await typeInto(again, 'Discard me');
    await press(again, 'Escape');
    expect(fake.callsTo('renameConversation')).toHaveLength(1);
    expect(queryByRole(document.body, 'textbox', 'Conversation title')).toBeNull();
  });

  it('deletes with an Undo toast that restores the conversation', async () => {
    const fake = seeded();
    view = await renderApp(fake);
    await click(byRole(document.body, 'button', 'Delete “Grant proposal”'));
    await flush();
    expect(titles()).toEqual(['Tokenizer question']);
    const toast = byRole(document.body, 'region', 'Notifications');
    expect(toast.textContent).toContain('Deleted “Grant proposal”.');
    await click(byRole(toast, 'button', 'Undo'));
    await flush();
    expect(fake.callsTo('restoreConversation')).toEqual([{ id: 'c2' }]);
    expect(titles()).toEqual(['Tokenizer question', 'Grant proposal']);
    expect(queryByRole(toast, 'button', 'Undo')).toBeNull();
  });

  it('opens a conversation and marks it current', async () => {
    const undoLayout = fakeLayout();
    onTestFinished(undoLayout);
    view = await renderApp(seeded());
    const open = document.querySelector('[data-conversation-id="c2"] .conversation-open') as HTMLElement;
    await click(open);
    await flush();
    expect(open.getAttribute('aria-current')).toBe('page');
    expect(byRole(document.body, 'heading', 'Grant proposal')).toBeTruthy();
    expect(document.body.textContent).toContain('Draft the budget section');
  });
});
