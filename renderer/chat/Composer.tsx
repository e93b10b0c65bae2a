import { useEffect, useId, useLayoutEffect, useRef, useState, type KeyboardEvent } from 'react';
import { SendIcon, StopIcon } from '../components/icons';

/** Props of the message composer. */
export interface ComposerProps {
  /** Sends the text; resolves false when it was not sent (the text is then kept). */
  readonly onSend: (text: string) => Promise<boolean>;
  readonly onStop: () => void;
  /** A reply is streaming: Esc and the Stop button end it. */
  readonly streaming: boolean;
  /** A send is in flight. */
  readonly sending: boolean;
  /** The composer is locked (model unavailable); the id points at the text saying why. */
  readonly lockedBy?: string;
  readonly placeholder: string;
  /** Changes when something asks the composer to take focus. */
  readonly focusRequest?: number;
  /** Spell check while typing (a setting IT may lock); on by default. */
  readonly spellCheck?: boolean;
}

const MAX_HEIGHT = 240;

/**
 * Where a message is written: grows with its text, Enter sends, Shift+Enter adds a line,
 * Esc stops a streaming reply.
 */
export function Composer({
  onSend,
  onStop,
  streaming,
  sending,
  lockedBy,
  placeholder,
  focusRequest,
  spellCheck = true,
}: ComposerProps) {
  const [text, setText] = useState('');
  const field = useRef<HTMLTextAreaElement>(null);
  const hintId = useId();
  const locked = lockedBy !== undefined;

  useLayoutEffect(() => {
    const element = field.current;
    if (!element) return;
    element.style.height = 'auto';
    element.style.height = `${Math.min(element.scrollHeight, MAX_HEIGHT)}px`;
  }, [text]);

  useEffect(() => {
    if (focusRequest) field.current?.focus();
  }, [focusRequest]);

  const canSend = !locked && !streaming && !sending && text.trim().length > 0;

  const submit = async () => {
    if (!canSend) return;
    const sent = text;
    setText('');
    const ok = await onSend(sent);
    if (!ok) setText((current) => current || sent);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void submit();
    } else if (event.key === 'Escape' && streaming) {
      event.preventDefault();
      onStop();
    }
  };

  return (
    <form
      className={`composer${locked ? ' is-locked' : ''}`}
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      <textarea
        ref={field}
        className="composer-input"
        aria-label="Message"
        aria-describedby={[hintId, lockedBy].filter(Boolean).join(' ')}
        placeholder={placeholder}
        rows={1}
        spellCheck={spellCheck}
        value={text}
        disabled={locked}
        onChange={(event) => setText(event.target.value)}
        onKeyDown={onKeyDown}
      />
      <div className="composer-bar">
        <span id={hintId} className="composer-hint">
          Enter to send · Shift+Enter for a new line{streaming ? ' · Esc to stop' : ''}
        </span>
        {streaming ? (
          <button type="button" className="button button-danger" onClick={onStop}>
            <StopIcon /> Stop generating
          </button>
        ) : (
          <button type="submit" className="button button-primary" disabled={!canSend} aria-label="Send message">
            <SendIcon /> Send
          </button>
        )}
      </div>
    </form>
  );
}
