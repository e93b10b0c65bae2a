import type { ChatMessage, Conversation, IpcError, IpcEventPayload, TokenUsage } from '../../shared/ipc';
import { DECISION_ID_HEADER } from '../../shared/protocol';
import type { DecisionReason } from '../../shared/reasons';
import { DEFAULT_TITLE, describeWriteFailure, type ConversationStore } from '../conversations/ConversationStore';
import type { Disposable } from '../events';
import { IpcFailure } from '../ipc/dispatch';
import type { Clock } from '../platform';
import { readCompletionStream } from './completionStream';
import { connectionLostError, errorFromResponse, plainError } from './gatewayErrors';
import { titleFromMessage } from './title';

/** The gateway's OpenAI-compatible chat endpoint. */
export const COMPLETIONS_PATH = '/v1/chat/completions';

/** Whether the current entitlement document lets the user call a model, and if not, why. */
export type ModelCheck =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: DecisionReason; readonly title: string; readonly message: string };

/** A DPoP-authorized fetch against the gateway: `path` is relative to the gateway URL. */
export type GatewayFetch = (path: string, init: RequestInit) => Promise<Response>;

/** The events chat sends to the renderer. */
export type ChatEventName = 'chatDelta' | 'chatDone' | 'conversationsChanged';

/** Forwards a chat event to the renderer. */
export type ChatEventSink = <E extends ChatEventName>(event: E, payload: IpcEventPayload<E>) => void;

/** What {@link ChatService} is built from. */
export interface ChatServiceDeps {
  readonly store: ConversationStore;
  readonly fetch: GatewayFetch;
  readonly checkModel: (model: string) => ModelCheck;
  /** Called when the gateway refuses a call or cuts a stream on policy, so entitlements are refetched. */
  readonly onForbidden: () => void;
  readonly emit: ChatEventSink;
  readonly clock: Clock;
  readonly log?: (message: string, error?: unknown) => void;
}

/** A message to send: into a conversation (or a new one), optionally replacing it from a message on. */
export interface SendChatRequest {
  readonly conversationId?: string;
  readonly model: string;
  readonly content: string;
  /** Remove this message and everything after it first (edit and resend, regenerate). */
  readonly replaceFromMessageId?: string;
}

/** Where the reply to a sent message is being written. */
export interface SentChat {
  readonly conversationId: string;
  /** The assistant message that `chatDelta` and `chatDone` events name. */
  readonly messageId: string;
}

interface ActiveReply {
  readonly conversationId: string;
  readonly messageId: string;
  readonly userMessageId: string;
  readonly controller: AbortController;
  stopRequested: boolean;
  done: Promise<void>;
}

type ReplyEnd =
  | { readonly status: 'complete'; readonly usage?: TokenUsage }
  | { readonly status: 'stopped' }
  | { readonly status: 'error'; readonly error: IpcError };

/**
 * Chat with the gateway: saves the user's message, streams the reply into the conversation and to the renderer.
 *
 * `send` answers as soon as both messages are saved; the reply then arrives as `chatDelta` events
 * and ends with one `chatDone` (`complete`, `stopped`, or `error` with a readable error). Whatever
 * part of a reply arrived is kept, however the stream ends. The model is checked against the
 * entitlement document first (defence in depth: the gateway checks again on every call).
 * Store changes are forwarded as `conversationsChanged`, so the composition root need not wire them.
 */
export class ChatService {
  private readonly active = new Map<string, ActiveReply>();
  private readonly preparing = new Map<string, Promise<unknown>>();
  private readonly storeSubscription: Disposable;
  private readonly log: (message: string, error?: unknown) => void;

  constructor(private readonly deps: ChatServiceDeps) {
    this.log = deps.log ?? ((message, error) => console.warn(message, error ?? ''));
    this.storeSubscription = deps.store.onDidChange((change) =>
      deps.emit('conversationsChanged', { ids: [...change.ids] }),
    );
  }

  /**
   * Sends a message and starts streaming the reply; a reply still streaming in that conversation is stopped first.
   *
   * Throws `MODEL_DENIED` (with the reason) before anything is saved or sent when the model is not permitted.
   */
  async send(request: SendChatRequest): Promise<SentChat> {
    if (request.content.trim().length === 0) throw new IpcFailure('BAD_REQUEST', 'Type a message to send.');
    const verdict = this.deps.checkModel(request.model);
    if (!verdict.allowed) {
      throw new IpcFailure('MODEL_DENIED', verdict.message || verdict.title, { reason: verdict.reason });
    }
    if (request.conversationId === undefined) {
      if (request.replaceFromMessageId !== undefined) {
        throw new IpcFailure('BAD_REQUEST', 'A message can only be replaced within its conversation.');
      }
      const conversation = await this.deps.store
        .create(request.model, titleFromMessage(request.content))
        .catch((error: unknown) => {
          throw error instanceof IpcFailure ? error : new IpcFailure('SAVE_FAILED', describeWriteFailure(error));
        });
      return this.start(conversation, request, conversation.messages);
    }
    const conversationId = request.conversationId;
    return this.oneAtATime(conversationId, async () => {
      await this.stop(conversationId);
      const conversation = await this.deps.store.get(conversationId);
      let history: readonly ChatMessage[] = conversation.messages;
      if (request.replaceFromMessageId !== undefined) {
        const at = history.findIndex((message) => message.id === request.replaceFromMessageId);
        if (at === -1) throw new IpcFailure('NOT_FOUND', 'The message to replace is no longer in the conversation.');
        await this.deps.store.truncateFrom(conversationId, request.replaceFromMessageId);
        history = history.slice(0, at);
      }
      return this.start(conversation, request, history);
    });
  }

  /**
   * Sends the last user message again in place of the reply to it, optionally with another model.
   */
  async regenerate(conversationId: string, model?: string): Promise<SentChat> {
    const conversation = await this.deps.store.get(conversationId);
    const lastUser = conversation.messages.findLast((message) => message.role === 'user');
    if (!lastUser) throw new IpcFailure('BAD_REQUEST', 'There is no message to regenerate a reply for.');
    return this.send({
      conversationId,
      model: model ?? conversation.model,
      content: lastUser.content,
      replaceFromMessageId: lastUser.id,
    });
  }

  /**
   * Stops the reply streaming in a conversation: aborts the request upstream and saves the part received as `stopped`.
   *
   * Answers once the partial reply is saved and `chatDone` sent; `stopped` is false when nothing was streaming.
   */
  async stop(conversationId: string): Promise<{ stopped: boolean }> {
    const reply = this.active.get(conversationId);
    if (!reply) return { stopped: false };
    reply.stopRequested = true;
    reply.controller.abort();
    await reply.done;
    return { stopped: true };
  }

  /** True while a reply is streaming into the conversation. */
  isStreaming(conversationId: string): boolean {
    return this.active.has(conversationId);
  }

  /** Resolves when the reply streaming in a conversation (or every one) has ended and been saved. */
  async settled(conversationId?: string): Promise<void> {
    const replies = conversationId === undefined ? [...this.active.values()] : [this.active.get(conversationId)];
    await Promise.all(replies.map((reply) => reply?.done));
  }

  /** Stops every stream (saving the partial replies) and stops forwarding store changes. */
  async dispose(): Promise<void> {
    await Promise.all([...this.active.keys()].map((id) => this.stop(id)));
    this.storeSubscription.dispose();
  }

  private async oneAtATime<T>(conversationId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.preparing.get(conversationId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(task);
    this.preparing.set(conversationId, next);
    try {
      return await next;
    } finally {
      if (this.preparing.get(conversationId) === next) this.preparing.delete(conversationId);
    }
  }

  private async start(
    conversation: Conversation,
    request: SendChatRequest,
    history: readonly ChatMessage[],
  ): Promise<SentChat> {
    const { store } = this.deps;
    const { model } = request;
    if (conversation.title === DEFAULT_TITLE && !history.some((message) => message.role === 'user')) {
      await store.rename(conversation.id, titleFromMessage(request.content));
    }
    if (conversation.model !== model) await store.setModel(conversation.id, model);
    // Both in one save: a question whose reply could not even be started is not kept as a ghost.
    const [user, assistant] = await store
      .appendMessages(conversation.id, [
        { role: 'user', content: request.content, model, status: 'complete', createdAt: this.isoNow() },
        { role: 'assistant', content: '', model, status: 'streaming', createdAt: this.isoNow() },
      ])
      .catch((error: unknown) => {
        throw error instanceof IpcFailure ? error : new IpcFailure('SAVE_FAILED', describeWriteFailure(error));
      });
    if (!user || !assistant) throw new Error('The store answered without the messages it saved');
    const messages = [...history, user]
      .filter((message) => message.content.length > 0)
      .map((message) => ({ role: message.role, content: message.content }));
    const reply: ActiveReply = {
      conversationId: conversation.id,
      messageId: assistant.id,
      userMessageId: user.id,
      controller: new AbortController(),
      stopRequested: false,
      done: Promise.resolve(),
    };
    this.active.set(conversation.id, reply);
    reply.done = this.stream(
      reply,
      JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } }),
    );
    return { conversationId: conversation.id, messageId: assistant.id };
  }

  /** Runs one reply to its end; never rejects. */
  private async stream(reply: ActiveReply, body: string): Promise<void> {
    let end: ReplyEnd;
    try {
      end = await this.request(reply, body);
    } catch (error) {
      if (reply.stopRequested) end = { status: 'stopped' };
      else if (error instanceof IpcFailure) end = { status: 'error', error: error.error };
      else end = { status: 'error', error: connectionLostError(error) };
    }
    if (reply.stopRequested && end.status === 'error') end = { status: 'stopped' };
    if (end.status === 'error') {
      end = { status: 'error', error: plainError(end.error) };
      if (end.error.detail) this.log(`Reply in ${reply.conversationId} failed: ${end.error.detail}`);
    }
    try {
      const error = end.status === 'error' ? end.error : undefined;
      const usage = end.status === 'complete' ? end.usage : undefined;
      await this.deps.store.updateMessage(reply.conversationId, reply.messageId, {
        status: end.status,
        error,
        ...(usage ? { usage } : {}),
      });
    } catch (saveError) {
      if (!(saveError instanceof IpcFailure && saveError.error.code === 'NOT_FOUND')) {
        this.log(`Could not save the reply in conversation ${reply.conversationId}`, saveError);
        // A reply that is not on disk is not complete, whatever the gateway said: the text so far stays on screen.
        end = { status: 'error', error: { code: 'SAVE_FAILED', message: describeWriteFailure(saveError) } };
        await this.deps.store
          .updateMessage(
            reply.conversationId,
            reply.messageId,
            { status: 'error', error: end.error },
            { durable: false },
          )
          .catch(() => {});
      }
    }
    const error = end.status === 'error' ? end.error : undefined;
    if (this.active.get(reply.conversationId) === reply) this.active.delete(reply.conversationId);
    this.deps.emit('chatDone', {
      conversationId: reply.conversationId,
      messageId: reply.messageId,
      status: end.status,
      ...(error ? { error } : {}),
    });
  }

  private async request(reply: ActiveReply, body: string): Promise<ReplyEnd> {
    const response = await this.deps.fetch(COMPLETIONS_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body,
      signal: reply.controller.signal,
    });
    const decisionId = response.headers.get(DECISION_ID_HEADER);
    if (decisionId) await this.recordDecision(reply, decisionId);
    if (!response.ok) {
      const failure = await errorFromResponse(response);
      if (failure.decisionId && failure.decisionId !== decisionId) await this.recordDecision(reply, failure.decisionId);
      if (response.status === 403 || failure.error.reason) this.deps.onForbidden();
      return { status: 'error', error: failure.error };
    }
    if (!response.body) return { status: 'error', error: connectionLostError(new Error('the reply had no body')) };
    const end = await readCompletionStream(response.body, (delta) => this.deliver(reply, delta));
    if (end.status === 'complete') return end;
    if (end.decisionId && end.decisionId !== decisionId) await this.recordDecision(reply, end.decisionId);
    if (end.error.reason) this.deps.onForbidden();
    return { status: 'error', error: end.error };
  }

  private deliver(reply: ActiveReply, delta: string): void {
    if (reply.stopRequested) return;
    if (!this.deps.store.appendDelta(reply.conversationId, reply.messageId, delta)) {
      reply.stopRequested = true;
      reply.controller.abort();
      return;
    }
    this.deps.emit('chatDelta', { conversationId: reply.conversationId, messageId: reply.messageId, delta });
  }

  /** Records the gateway's audit id on the exchange; written with the reply. */
  private async recordDecision(reply: ActiveReply, decisionId: string): Promise<void> {
    for (const messageId of [reply.userMessageId, reply.messageId]) {
      await this.deps.store
        .updateMessage(reply.conversationId, messageId, { decisionId }, { durable: false })
        .catch((error: unknown) => this.log('Could not record the decision id', error));
    }
  }

  private isoNow(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}
