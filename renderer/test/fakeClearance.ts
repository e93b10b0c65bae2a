import type { z } from 'zod';
import {
  ipcCalls,
  ipcEvents,
  type AppInfo,
  type ChatMessage,
  type ClearanceApi,
  type Conversation,
  type ConversationSummary,
  type DeviceStatus,
  type EntitlementsView,
  type IpcChannel,
  type IpcError,
  type IpcErrorCode,
  type IpcEventName,
  type IpcEventPayload,
  type IpcResponse,
  type IpcResult,
  type SessionState,
} from '../../shared/ipc';
import { appInfoFixture, entitlementsFixture, passingDevice, signedInSession } from './fixtures';
import type { ManagedPolicyView } from '../../shared/managedPolicy';
import type { UpdateStatus } from '../../shared/update';

type ParsedRequest<C extends IpcChannel> = z.output<(typeof ipcCalls)[C]['request']>;

/** How the fake answers one call; a test can replace any of them with `fake.handle`. */
export type FakeHandler<C extends IpcChannel> = (
  request: ParsedRequest<C>,
) => IpcResult<IpcResponse<C>> | Promise<IpcResult<IpcResponse<C>>>;

/** One handler per contract call: adding a call to `shared/ipc.ts` breaks this type until the fake answers it. */
export type FakeHandlers = { [C in IpcChannel]: FakeHandler<C> };

/** A call the page made, after the contract accepted its payload. */
export interface RecordedCall {
  readonly channel: IpcChannel;
  readonly request: unknown;
}

/** The desktop side as the fake holds it; tests change it directly and `emit` to tell the page. */
export interface FakeDesktop {
  appInfo: AppInfo;
  /** IT's managed configuration (unmanaged unless a test sets it). */
  policy: ManagedPolicyView;
  session: SessionState;
  /** The account `signIn` signs in as. */
  account: NonNullable<SessionState['account']>;
  device: DeviceStatus;
  entitlements: EntitlementsView;
  conversations: Map<string, Conversation>;
  deleted: Map<string, Conversation>;
  /** Where exports are saved; undefined answers like the harness (content only, the page downloads). */
  exportSavesTo?: string;
  /** Links `openExternal` refuses, as main's allow-list would. */
  blockedLinks: Set<string>;
  /** Why saving fails now, for the read-only banner; undefined while saving works. */
  saveProblem?: string;
  /** What the page sent through `reportRendererError`. */
  rendererErrors: string[];
  /** The in-app updater (off, as in the harness, unless a test sets it). */
  update: UpdateStatus;
}

/** Builds a successful IPC answer. */
export function ok<T>(value: T): IpcResult<T> {
  return { ok: true, value };
}

/** Builds an IPC error answer. */
export function fail<T = never>(code: IpcErrorCode, message: string, extra: Partial<IpcError> = {}): IpcResult<T> {
  return { ok: false, error: { code, message, ...extra } };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function summarize(conversation: Conversation, query?: string): ConversationSummary {
  const needle = query?.toLowerCase();
  const hit = needle ? conversation.messages.find((m) => m.content.toLowerCase().includes(needle)) : undefined;
  return {
    id: conversation.id,
    title: conversation.title,
    model: conversation.model,
    updatedAt: conversation.updatedAt,
    messageCount: conversation.messages.length,
    snippet: hit ? hit.content.slice(0, 120) : undefined,
  };
}

/**
 * A test double of `window.clearance` that implements the contract and behaves like main.
 *
 * Requests are parsed with the contract's own zod schemas (a bad payload gets `BAD_REQUEST`,
 * exactly as the real IPC handlers answer) and responses are checked the same way, so neither
 * the page nor the fake can drift from `shared/ipc.ts`.
 */
export class FakeClearance {
  readonly state: FakeDesktop;
  readonly calls: RecordedCall[] = [];
  readonly api: ClearanceApi;
  private readonly handlers: FakeHandlers;
  private readonly listeners = new Map<IpcEventName, Set<(payload: unknown) => void>>();
  private nextId = 1;

  constructor(state: Partial<FakeDesktop> = {}) {
    this.state = {
      appInfo: appInfoFixture,
      policy: { state: 'unmanaged', entries: [], problems: [], locked: [], settings: {} },
      session: signedInSession,
      account: signedInSession.account ?? { name: 'Ada', username: 'ada', homeAccountId: 'ada' },
      device: passingDevice,
      entitlements: entitlementsFixture,
      conversations: new Map(),
      deleted: new Map(),
      blockedLinks: new Set(),
      rendererErrors: [],
      update: {
        policy: 'off',
        state: 'disabled',
        currentVersion: appInfoFixture.version,
        message: 'The browser harness never updates itself.',
        canUpdate: false,
      },
      ...state,
    };
    this.handlers = this.defaultHandlers();
    const api: Record<string, unknown> = {};
    for (const channel of Object.keys(ipcCalls) as IpcChannel[]) {
      api[channel] = (request: unknown) => this.invoke(channel, request);
    }
    api.on = (event: IpcEventName, listener: (payload: unknown) => void) => {
      if (!(event in ipcEvents)) throw new Error(`Unknown event "${String(event)}"`);
      const set = this.listeners.get(event) ?? new Set();
      set.add(listener);
      this.listeners.set(event, set);
      return () => {
        set.delete(listener);
      };
    };
    this.api = Object.freeze(api) as ClearanceApi;
  }

  /** Replaces how one call is answered. */
  handle<C extends IpcChannel>(channel: C, handler: FakeHandler<C>): void {
    (this.handlers as Record<IpcChannel, unknown>)[channel] = handler;
  }

  /** Pushes an event to the page, checked against the contract's schema first. */
  emit<E extends IpcEventName>(event: E, payload: IpcEventPayload<E>): void {
    const parsed = ipcEvents[event].parse(payload);
    for (const listener of this.listeners.get(event) ?? []) listener(parsed);
  }

  /** How many listeners the page holds for an event (to prove it unsubscribes). */
  listenerCount(event: IpcEventName): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls made on one channel, in order. */
  callsTo<C extends IpcChannel>(channel: C): ParsedRequest<C>[] {
    return this.calls.filter((call) => call.channel === channel).map((call) => call.request as ParsedRequest<C>);
  }

  /** Adds a stored conversation. */
  addConversation(conversation: Conversation): void {
    this.state.conversations.set(conversation.id, clone(conversation));
  }

  /** The reply currently streaming, if any. */
  streamingReply(): { conversation: Conversation; message: ChatMessage } | undefined {
    for (const conversation of this.state.conversations.values()) {
      const message = conversation.messages.find((m) => m.status === 'streaming');
      if (message) return { conversation, message };
    }
    return undefined;
  }

  /** Streams more text into the current reply, as main forwards gateway tokens. */
  streamDelta(delta: string): void {
    const reply = this.requireStreaming();
    this.replaceMessage(reply.conversation, { ...reply.message, content: reply.message.content + delta });
    this.emit('chatDelta', { conversationId: reply.conversation.id, messageId: reply.message.id, delta });
  }

  /** Ends the current reply; an error keeps the partial text, as main saves it. */
  finishStream(status: 'complete' | 'stopped' | 'error' = 'complete', error?: IpcError): void {
    const reply = this.requireStreaming();
    this.replaceMessage(reply.conversation, { ...reply.message, status, error });
    this.emit('chatDone', { conversationId: reply.conversation.id, messageId: reply.message.id, status, error });
  }

  /** Updates the entitlements and tells the page, as a live `entitlements.changed` would. */
  setEntitlements(view: EntitlementsView): void {
    this.state.entitlements = view;
    this.emit('entitlementsChanged', view);
  }

  /** Updates the session and tells the page. */
  setSession(session: SessionState): void {
    this.state.session = session;
    this.emit('sessionChanged', session);
  }

  private requireStreaming(): { conversation: Conversation; message: ChatMessage } {
    const reply = this.streamingReply();
    if (!reply) throw new Error('No reply is streaming in the fake; call sendChat first.');
    return reply;
  }

  private replaceMessage(conversation: Conversation, message: ChatMessage): void {
    this.state.conversations.set(conversation.id, {
      ...conversation,
      messages: conversation.messages.map((m) => (m.id === message.id ? message : m)),
    });
  }

  private async invoke(channel: IpcChannel, request: unknown): Promise<IpcResult<unknown>> {
    const parsed = ipcCalls[channel].request.safeParse(request ?? {});
    if (!parsed.success) {
      return fail('BAD_REQUEST', `Invalid request for ${channel}.`, {
        issues: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
      });
    }
    this.calls.push({ channel, request: parsed.data });
    const handler = this.handlers[channel] as (request: unknown) => Promise<IpcResult<unknown>> | IpcResult<unknown>;
    const result = await handler(parsed.data);
    if (result.ok) {
      const checked = ipcCalls[channel].response.safeParse(result.value);
      if (!checked.success) throw new Error(`The fake answered ${channel} with a value the contract rejects.`);
      return { ok: true, value: clone(checked.data) };
    }
    return result;
  }

  private id(prefix: string): string {
    return `${prefix}-${this.nextId++}`;
  }

  private changed(...ids: string[]): void {
    queueMicrotask(() => this.emit('conversationsChanged', { ids }));
  }

  private defaultHandlers(): FakeHandlers {
    const s = this.state;
    const conversation = (id: string) => s.conversations.get(id);
    return {
      getAppInfo: () => ok(s.appInfo),
      getManagedPolicy: () => ok(s.policy),
      getSessionState: () => ok(s.session),
      signIn: () => {
        this.setSession({ status: 'signed-in', tokenPersistence: s.session.tokenPersistence, account: s.account });
        return ok(s.session);
      },
      cancelSignIn: () => {
        this.setSession({ status: 'signed-out', tokenPersistence: s.session.tokenPersistence });
        return ok(s.session);
      },
      signOut: () => {
        this.setSession({ status: 'signed-out', tokenPersistence: s.session.tokenPersistence });
        return ok(s.session);
      },
      getEntitlements: () => ok(s.entitlements),
      refreshEntitlements: () => ok(s.entitlements),
      getDeviceStatus: () => ok(s.device),
      recheckDevice: () => ok(s.device),
      sendChat: ({ conversationId, model, content, replaceFromMessageId }) => {
        const entitlement = s.entitlements.models.find((m) => m.id === model);
        if (entitlement?.status !== 'allowed') {
          return fail('MODEL_DENIED', `${entitlement?.name ?? model} is not available to you.`, {
            reason: entitlement?.reason ?? 'NOT_ENTITLED',
          });
        }
        const now = new Date().toISOString();
        const existing = conversationId ? conversation(conversationId) : undefined;
        if (conversationId && !existing) return fail('NOT_FOUND', 'That conversation no longer exists.');
        let messages = existing?.messages ?? [];
        if (replaceFromMessageId) {
          const cut = messages.findIndex((m) => m.id === replaceFromMessageId);
          if (cut < 0) return fail('NOT_FOUND', 'That message no longer exists.');
          messages = messages.slice(0, cut);
        }
        const reply: ChatMessage = {
          id: this.id('a'),
          role: 'assistant',
          content: '',
          createdAt: now,
          model,
          status: 'streaming',
        };
        const next: Conversation = {
          id: existing?.id ?? this.id('c'),
          title: existing?.title ?? content.slice(0, 40),
          model,
          createdAt: existing?.createdAt ?? now,
          updatedAt: now,
          messages: [...messages, { id: this.id('u'), role: 'user', content, createdAt: now, model }, reply],
        };
        s.conversations.set(next.id, next);
        this.changed(next.id);
        return ok({ conversationId: next.id, messageId: reply.id });
      },
      stopChat: ({ conversationId }) => {
        const reply = this.streamingReply();
        if (!reply || reply.conversation.id !== conversationId) return ok({ stopped: false });
        this.finishStream('stopped');
        return ok({ stopped: true });
      },
      listConversations: ({ query }) => {
        const needle = query?.trim().toLowerCase();
        const all = [...s.conversations.values()].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
        const hits = needle
          ? all.filter(
              (c) =>
                c.title.toLowerCase().includes(needle) ||
                c.messages.some((m) => m.content.toLowerCase().includes(needle)),
            )
          : all;
        return ok(hits.map((c) => summarize(c, needle)));
      },
      getConversation: ({ id }) => {
        const found = conversation(id);
        return found ? ok(found) : fail('NOT_FOUND', 'That conversation no longer exists.');
      },
      renameConversation: ({ id, title }) => {
        const found = conversation(id);
        if (!found) return fail('NOT_FOUND', 'That conversation no longer exists.');
        const renamed = { ...found, title };
        s.conversations.set(id, renamed);
        this.changed(id);
        return ok(summarize(renamed));
      },
      deleteConversation: ({ id }) => {
        const found = conversation(id);
        if (!found) return ok({ deleted: false });
        s.conversations.delete(id);
        s.deleted.set(id, found);
        this.changed(id);
        return ok({ deleted: true });
      },
      restoreConversation: ({ id }) => {
        const found = s.deleted.get(id);
        if (!found) return ok({ restored: false });
        s.deleted.delete(id);
        s.conversations.set(id, found);
        this.changed(id);
        return ok({ restored: true });
      },
      exportConversation: ({ id, format }) => {
        const found = conversation(id);
        if (!found) return fail('NOT_FOUND', 'That conversation no longer exists.');
        const content =
          format === 'json'
            ? JSON.stringify(found, null, 2)
            : `# ${found.title}\n\n${found.messages.map((m) => `**${m.role}**: ${m.content}`).join('\n\n')}\n`;
        const fileName = `${found.title.replace(/[^\w -]+/g, '').trim() || 'conversation'}.${format === 'json' ? 'json' : 'md'}`;
        return ok({ fileName, content, savedTo: s.exportSavesTo });
      },
      openExternal: ({ url }) => ok({ opened: !s.blockedLinks.has(url) }),
      takeNotices: () => ok({ notices: [] }),
      getSaveStatus: () => ok(s.saveProblem ? { writable: false, problem: s.saveProblem } : { writable: true }),
      reportRendererError: ({ message }) => {
        s.rendererErrors.push(message);
        return ok({ logged: true });
      },
      exportDiagnostics: () =>
        ok({
          fileName: 'clearance-diagnostics.json',
          content: JSON.stringify({ kind: 'clearance-diagnostics', app: { version: s.appInfo.version } }),
          savedTo: s.exportSavesTo,
        }),
      getUpdateStatus: () => ok(s.update),
      checkForUpdates: () => ok(s.update),
      installUpdate: () =>
        s.update.canUpdate
          ? ok((s.update = { ...s.update, state: s.update.state === 'available' ? 'downloading' : s.update.state }))
          : fail('BAD_REQUEST', s.update.message ?? 'Clearance does not update itself here.'),
    };
  }
}
