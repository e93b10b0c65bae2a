import { memo, useId, useState } from 'react';
import type { ChatMessage } from '../../shared/ipc';
import { reasonTitles } from '../../shared/reasonTitles';
import { CopyIcon, EditIcon, RefreshIcon, WarningIcon } from '../components/icons';
import { Spinner } from '../components/Spinner';
import { formatDateTime } from '../components/format';
import { MessageMarkdown } from '../markdown/Markdown';

/** What a message row can ask for; stable functions so rows stay memoized. */
export interface MessageRowActions {
  readonly copy: (text: string, what: string) => void;
  readonly regenerate: () => void;
  readonly editAndResend: (messageId: string, content: string) => void;
  readonly explain: (modelId: string) => void;
  /** Whether a model is restricted now (so "Why?" has something to explain). */
  readonly isRestricted: (modelId: string) => boolean;
  /** Whether a model may be used now (a reply cut by policy then says its model is back). */
  readonly isAvailable: (modelId: string) => boolean;
}

/** Props of one message row. */
export interface MessageRowProps {
  readonly message: ChatMessage;
  /** The name of the model that wrote an assistant message. */
  readonly author: string;
  /** The latest assistant reply, which can be regenerated. */
  readonly isLastReply: boolean;
  /** Editing and regenerating are possible (nothing streaming, model available). */
  readonly canResend: boolean;
  readonly actions: MessageRowActions;
}

function MessageError({
  message,
  author,
  actions,
}: {
  readonly message: ChatMessage;
  readonly author: string;
  readonly actions: MessageRowActions;
}) {
  const error = message.error;
  const heading = error?.reason
    ? `${message.content ? 'Reply stopped' : 'Reply refused'} by your organisation’s policy: ${reasonTitles[error.reason]}`
    : 'The reply was interrupted';
  const restricted = error?.reason !== undefined && message.model !== undefined && actions.isRestricted(message.model);
  return (
    <div className="message-error" data-testid="message-error">
      <WarningIcon />
      <p>
        <strong>{heading}.</strong> {error?.message ?? 'The reply could not be completed.'}
        {message.content ? ' The partial reply above was kept.' : ''}
        {error?.policy ? (
          <>
            {' '}
            Rule: <code>{error.policy}</code>.
          </>
        ) : null}{' '}
        {restricted ? (
          <button type="button" className="link-button" onClick={() => message.model && actions.explain(message.model)}>
            Why?
          </button>
        ) : error?.reason && message.model && actions.isAvailable(message.model) ? (
          <span data-testid="available-again">{author} is available again.</span>
        ) : null}
      </p>
      {error?.detail ? (
        <details className="message-error-details">
          <summary>Details</summary>
          <pre className="selectable">{error.detail}</pre>
        </details>
      ) : null}
    </div>
  );
}

function EditBox({
  initial,
  onCancel,
  onSubmit,
}: {
  readonly initial: string;
  readonly onCancel: () => void;
  readonly onSubmit: (text: string) => void;
}) {
  const [text, setText] = useState(initial);
  return (
    <form
      className="edit-box"
      onSubmit={(event) => {
        event.preventDefault();
        if (text.trim()) onSubmit(text);
      }}
    >
      <textarea
        aria-label="Edit message"
        value={text}
        autoFocus
        rows={Math.min(10, Math.max(2, text.split('\n').length))}
        onChange={(event) => setText(event.target.value)}
        onKeyDown={(event) => {
          if (event.key === 'Escape') {
            event.preventDefault();
            onCancel();
          } else if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
            event.preventDefault();
            if (text.trim()) onSubmit(text);
          }
        }}
      />
      <div className="edit-box-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={!text.trim()}>
          Save and send
        </button>
      </div>
    </form>
  );
}

/**
 * One message: who wrote it, its text (markdown for replies), its state, and its actions.
 *
 * Memoized: while a reply streams, only that reply's row re-renders.
 */
export const MessageRow = memo(function MessageRow({
  message,
  author,
  isLastReply,
  canResend,
  actions,
}: MessageRowProps) {
  const [editing, setEditing] = useState(false);
  const labelId = useId();
  const mine = message.role === 'user';
  const who = mine ? 'You' : author;
  const streaming = message.status === 'streaming';
  return (
    <article className={`message ${mine ? 'message-user' : 'message-assistant'}`} aria-labelledby={labelId}>
      <div className="message-meta">
        <span id={labelId} className="message-author">
          {who}
        </span>
        {message.createdAt ? (
          <time className="message-time" dateTime={message.createdAt}>
            {formatDateTime(message.createdAt, '')}
          </time>
        ) : null}
        {!mine && message.usage ? (
          <span
            className="message-usage"
            title={`${message.usage.promptTokens.toLocaleString()} tokens in the prompt, ${message.usage.completionTokens.toLocaleString()} in the reply`}
          >
            {message.usage.totalTokens.toLocaleString()} tokens
          </span>
        ) : null}
      </div>
      {editing ? (
        <EditBox
          initial={message.content}
          onCancel={() => setEditing(false)}
          onSubmit={(text) => {
            setEditing(false);
            actions.editAndResend(message.id, text);
          }}
        />
      ) : mine ? (
        <div className="message-text">{message.content}</div>
      ) : message.content ? (
        <MessageMarkdown text={message.content} />
      ) : null}
      {streaming ? (
        <p className="message-streaming">
          <Spinner /> {message.content ? 'Writing…' : 'Thinking…'}
        </p>
      ) : null}
      {message.status === 'stopped' ? <p className="message-note">Stopped before the end.</p> : null}
      {message.status === 'error' ? <MessageError message={message} author={author} actions={actions} /> : null}
      {!editing && !streaming && !message.id.startsWith('pending-') ? (
        <div className="message-actions">
          <button
            type="button"
            className="button button-ghost button-small"
            aria-label={mine ? 'Copy your message' : `Copy ${author}’s reply`}
            onClick={() => actions.copy(message.content, 'Message')}
          >
            <CopyIcon /> Copy
          </button>
          {mine && canResend ? (
            <button
              type="button"
              className="button button-ghost button-small"
              aria-label="Edit and resend"
              onClick={() => setEditing(true)}
            >
              <EditIcon /> Edit
            </button>
          ) : null}
          {!mine && isLastReply && canResend ? (
            <button type="button" className="button button-ghost button-small" onClick={actions.regenerate}>
              <RefreshIcon /> Regenerate
            </button>
          ) : null}
        </div>
      ) : null}
    </article>
  );
});
