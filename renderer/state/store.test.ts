import { describe, expect, it } from 'vitest';
import type { ConversationSummary, IpcResult } from '../../shared/ipc';
import { createTestStore } from '../test/dom';
import { FakeClearance, ok } from '../test/fakeClearance';
import { entitlementsFixture, mythosDenied, signedInSession, signedOutSession } from '../test/fixtures';
import { currentModelId } from './store';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function started(fake = new FakeClearance()) {
  const app = createTestStore(fake);
  const stop = app.store.getState().start();
  await tick();
  await tick();
  return { ...app, fake, stop };
}

describe('app store', () => {
  it('keeps each person’s theme and spell check to themselves on a shared laptop', async () => {
    const { store, fake } = await started();
    const bao = { ...signedInSession, account: { ...signedInSession.account!, name: 'Bao', homeAccountId: 'bao.lab' } };
    store.getState().setTheme('dark');
    store.getState().setSpellCheck(false);
    fake.emit('sessionChanged', signedOutSession);
    expect(store.getState()).toMatchObject({ theme: 'system', spellCheck: true });
    fake.emit('sessionChanged', bao);
    expect(store.getState()).toMatchObject({ theme: 'system', spellCheck: true });
    store.getState().setTheme('light');
    fake.emit('sessionChanged', signedOutSession);
    fake.emit('sessionChanged', signedInSession);
    expect(store.getState()).toMatchObject({ theme: 'dark', spellCheck: false });
  });

  it('says once, in words, when a model comes back, and nothing on the first view', async () => {
    const { store, fake } = await started();
    expect(store.getState().toasts).toEqual([]);
    const allowed = { id: 'mythos-5', name: 'Mythos 5', status: 'allowed' as const };
    const models = (mythos: typeof allowed | typeof mythosDenied) =>
      entitlementsFixture.models.map((model) => (model.id === 'mythos-5' ? mythos : model));
    fake.setEntitlements({ ...entitlementsFixture, ver: 4183, models: models(allowed) });
    expect(store.getState().toasts.map((toast) => toast.text)).toEqual(['Mythos 5 is available again.']);
    expect(store.getState().announcement.text).toBe('Mythos 5 is available again.');
    // The same view again, or a model withdrawn, says nothing more.
    fake.setEntitlements({ ...entitlementsFixture, ver: 4184, models: models(allowed) });
    fake.setEntitlements({ ...entitlementsFixture, ver: 4185, models: models(mythosDenied) });
    expect(store.getState().toasts).toHaveLength(1);
  });

  it('applies any number of deltas in one update per frame', async () => {
    const { store, frames, fake } = await started();
    await store.getState().send('hi');
    await tick();
    await tick();
    let updates = 0;
    store.subscribe(() => updates++);
    for (let i = 0; i < 100; i++) fake.streamDelta(`t${i} `);
    expect(frames.pending).toBe(1);
    expect(updates).toBe(0);
    await frames.run();
    expect(updates).toBe(1);
    const stream = Object.values(store.getState().streams)[0];
    expect(stream?.text.split(' ').filter(Boolean)).toHaveLength(100);
  });

  it('keeps deltas that arrive before sendChat answers (a new chat has no id yet)', async () => {
    const fake = new FakeClearance();
    const { store, frames } = await started(fake);
    let answer: (value: IpcResult<{ conversationId: string; messageId: string }>) => void = () => undefined;
    fake.handle('sendChat', () => new Promise((resolve) => (answer = resolve)));
    const sent = store.getState().send('hello');
    fake.emit('chatDelta', { conversationId: 'c-new', messageId: 'a-new', delta: 'Early ' });
    await frames.run();
    fake.addConversation({
      id: 'c-new',
      title: 'hello',
      model: 'haiku-4',
      createdAt: '',
      updatedAt: '',
      messages: [{ id: 'u', role: 'user', content: 'hello', createdAt: '' }],
    });
    answer(ok({ conversationId: 'c-new', messageId: 'a-new' }));
    await sent;
    expect(store.getState().activeConversationId).toBe('c-new');
    expect(store.getState().streams['a-new']?.text).toBe('Early ');
    expect(store.getState().pendingSend).toBeUndefined();
  });

  it('records a chatDone for a reply it never saw a delta for', async () => {
    const { store, fake } = await started();
    fake.emit('chatDone', {
      conversationId: 'c1',
      messageId: 'a1',
      status: 'error',
      error: { code: 'MODEL_DENIED', message: 'Denied.' },
    });
    expect(store.getState().streams.a1).toMatchObject({ status: 'error', text: '' });
    expect(store.getState().announcement.text).toBe('Response interrupted: Denied.');
  });

  it('refuses to send to a model the entitlements deny, without calling main', async () => {
    const { store, fake } = await started();
    store.setState({ draftModel: 'mythos-5' });
    expect(await store.getState().send('hi')).toBe(false);
    expect(fake.callsTo('sendChat')).toEqual([]);
    expect(store.getState().sendError?.code).toBe('MODEL_DENIED');
  });

  it('will not choose a denied model', async () => {
    const { store } = await started();
    store.getState().chooseModel('mythos-5');
    expect(currentModelId(store.getState())).toBe('haiku-4');
    store.getState().chooseModel('echo-demo');
    expect(currentModelId(store.getState())).toBe('echo-demo');
  });

  it('ignores a search answer that arrives after a newer one', async () => {
    const fake = new FakeClearance();
    const answers: ((value: IpcResult<ConversationSummary[]>) => void)[] = [];
    const { store } = await started(fake);
    fake.handle('listConversations', () => new Promise((resolve) => answers.push(resolve)));
    const first = store.getState().searchConversations('old');
    const second = store.getState().searchConversations('new');
    const summary = (title: string): ConversationSummary => ({
      id: title,
      title,
      model: 'haiku-4',
      updatedAt: '',
      messageCount: 1,
    });
    answers[1]?.(ok([summary('new result')]));
    answers[0]?.(ok([summary('old result')]));
    await Promise.all([first, second]);
    expect(store.getState().conversations.map((c) => c.title)).toEqual(['new result']);
  });

  it('falls back to the first allowed model for a new chat and follows entitlement changes', async () => {
    const { store, fake } = await started();
    expect(currentModelId(store.getState())).toBe('haiku-4');
    fake.setEntitlements({
      ...entitlementsFixture,
      models: entitlementsFixture.models.filter((m) => m.id !== 'haiku-4'),
    });
    expect(currentModelId(store.getState())).toBe('echo-demo');
  });

  it('asks main to stop only while a reply is streaming', async () => {
    const { store, fake } = await started();
    await store.getState().send('hi');
    await tick();
    await store.getState().stop();
    expect(fake.callsTo('stopChat')).toHaveLength(1);
    await tick();
    await store.getState().stop();
    expect(fake.callsTo('stopChat')).toHaveLength(1);
  });

  it('drops the previous person’s conversations in the same update that shows another person signed in', async () => {
    const fake = new FakeClearance();
    const { store } = await started(fake);
    await store.getState().send('Avery’s private question');
    await tick();
    await tick();
    expect(store.getState().conversations).toHaveLength(1);
    expect(store.getState().activeConversationId).toBeDefined();
    const seen: { readonly account?: string; readonly conversations: number; readonly active?: string }[] = [];
    store.subscribe((state) =>
      seen.push({
        account: state.session?.account?.homeAccountId,
        conversations: state.conversations.length,
        active: state.activeConversationId,
      }),
    );
    fake.handle('listConversations', () => ok([]));
    fake.setSession({
      status: 'signed-in',
      tokenPersistence: 'encrypted',
      account: { name: 'Bao', username: 'bao', homeAccountId: 'bao' },
    });
    await tick();
    expect(seen[0]).toEqual({ account: 'bao', conversations: 0, active: undefined });
    expect(seen.every((state) => state.account === 'bao' && state.conversations === 0)).toBe(true);
    expect(fake.callsTo('takeNotices')).not.toHaveLength(0);
  });

  it('stops listening when stopped', async () => {
    const { fake, stop } = await started();
    stop();
    expect(fake.listenerCount('sessionChanged')).toBe(0);
  });
});
