import { useCallback, useId, useMemo } from 'react';
import type { ChatMessage } from '../../shared/ipc';
import { ChatIcon, WarningIcon } from '../components/icons';
import { Spinner } from '../components/Spinner';
import { allowedModels, listedModels, modelAccess, modelName } from '../state/access';
import { useActions, useAppState } from '../state/context';
import { isStreaming, visibleMessages } from '../state/messages';
import { currentModelId } from '../state/store';
import { Composer } from './Composer';
import { ExportMenu } from './ExportMenu';
import { MessageList } from './MessageList';
import type { MessageRowActions } from './MessageRow';
import { ModelLockedNotice } from './ModelLockedNotice';
import { ModelPicker } from './ModelPicker';

/**
 * The chat pane: model picker, messages and composer for the open (or a new) conversation.
 */
export function ChatView() {
  const actions = useActions();
  const activeId = useAppState((state) => state.activeConversationId);
  const conversation = useAppState((state) => state.activeConversation);
  const conversationError = useAppState((state) => state.conversationError);
  const pending = useAppState((state) => state.pendingSend);
  const streams = useAppState((state) => state.streams);
  const entitlements = useAppState((state) => state.entitlements);
  const sendError = useAppState((state) => state.sendError);
  const focusRequest = useAppState((state) => state.composerFocusRequest);
  const spellCheck = useAppState((state) => state.spellCheck);
  const modelId = useAppState(currentModelId);
  const lockedId = useId();
  const titleId = useId();

  const messages = useMemo(
    () => visibleMessages(conversation, activeId, pending, streams),
    [conversation, activeId, pending, streams],
  );
  const models = useMemo(() => listedModels(entitlements), [entitlements]);
  const alternatives = useMemo(() => allowedModels(entitlements), [entitlements]);
  const access = modelId ? modelAccess(entitlements, modelId) : undefined;
  const streaming = isStreaming(messages);
  const sending = pending !== undefined && pending.conversationId === activeId;
  const loading = activeId !== undefined && conversation?.id !== activeId && !conversationError;

  const authorOf = useCallback(
    (message: ChatMessage) => (message.model ? modelName(entitlements, message.model) : 'Assistant'),
    [entitlements],
  );
  const rowActions = useMemo<MessageRowActions>(
    () => ({
      copy: (text, what) => void actions.copy(text, what),
      regenerate: () => void actions.regenerate(),
      editAndResend: (id, content) => void actions.editAndResend(id, content),
      explain: actions.openWhy,
      isRestricted: (id) => modelAccess(entitlements, id).kind === 'denied',
      isAvailable: (id) => modelAccess(entitlements, id).kind === 'allowed',
    }),
    [actions, entitlements],
  );

  const locked = access && access.kind !== 'allowed' ? access : undefined;
  const last = messages.at(-1);
  // The reply just above already names the reason and the rule: the notice below only offers the next step.
  const reasonShownAbove =
    locked?.kind === 'denied' &&
    last?.status === 'error' &&
    last.model === modelId &&
    last.error?.reason !== undefined &&
    last.error.reason === locked.model.reason;
  const noModel = !modelId && entitlements !== undefined;

  return (
    <section className="chat" aria-labelledby={titleId}>
      <div className="chat-toolbar">
        <h1 id={titleId} className="chat-title">
          {conversation?.title ?? (activeId ? 'Loading…' : 'New chat')}
        </h1>
        <div className="chat-toolbar-actions">
          <ModelPicker
            models={models}
            value={modelId}
            onSelect={actions.chooseModel}
            onExplain={actions.openWhy}
            disabled={models.length === 0}
          />
          {conversation ? <ExportMenu /> : null}
        </div>
      </div>

      {conversationError ? (
        <div className="callout callout-error" role="alert">
          <WarningIcon />
          <p>This conversation could not be opened: {conversationError}</p>
        </div>
      ) : loading ? (
        <div className="chat-empty" role="status">
          <Spinner /> Opening conversation…
        </div>
      ) : messages.length > 0 ? (
        <MessageList
          conversationKey={activeId ?? 'new'}
          messages={messages}
          authorOf={authorOf}
          canResend={!streaming && !sending && !locked}
          actions={rowActions}
        />
      ) : (
        <div className="chat-empty">
          <ChatIcon className="icon chat-empty-icon" />
          <p className="chat-empty-title">Start a conversation</p>
          <p className="muted">
            {modelId && access?.kind === 'allowed'
              ? `You are chatting with ${access.model.name}. Replies stream in as they are written.`
              : 'Pick a model you have access to above.'}
          </p>
        </div>
      )}

      <div className="composer-area">
        {locked && modelId ? (
          <ModelLockedNotice
            id={lockedId}
            access={locked}
            modelName={modelName(entitlements, modelId)}
            alternatives={alternatives}
            onContinue={actions.chooseModel}
            onExplain={actions.openWhy}
            onShowAccess={() => actions.showView('access')}
            hasHistory={messages.length > 0}
            reasonShownAbove={reasonShownAbove}
          />
        ) : null}
        {sendError ? (
          <div className="callout callout-error" role="alert">
            <WarningIcon />
            <p>Your message was not sent: {sendError.message}</p>
          </div>
        ) : null}
        <Composer
          onSend={(text) => actions.send(text)}
          onStop={() => void actions.stop()}
          streaming={streaming}
          sending={sending}
          lockedBy={locked ? lockedId : noModel ? lockedId : undefined}
          placeholder={modelId ? `Message ${modelName(entitlements, modelId)}…` : 'No model available'}
          focusRequest={focusRequest}
          spellCheck={spellCheck}
        />
        {noModel ? (
          <p id={lockedId} className="muted composer-note">
            No model is available to you right now.{' '}
            <button type="button" className="link-button" onClick={() => actions.showView('access')}>
              See My access
            </button>
          </p>
        ) : null}
      </div>
    </section>
  );
}
