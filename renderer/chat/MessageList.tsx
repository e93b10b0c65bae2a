import { useVirtualizer } from '@tanstack/react-virtual';
import { useLayoutEffect, useRef } from 'react';
import type { ChatMessage } from '../../shared/ipc';
import { MessageRow, type MessageRowActions } from './MessageRow';

/** Props of the message list. */
export interface MessageListProps {
  /** Identifies the conversation; switching it scrolls to the latest message. */
  readonly conversationKey: string;
  readonly messages: readonly ChatMessage[];
  readonly authorOf: (message: ChatMessage) => string;
  readonly canResend: boolean;
  readonly actions: MessageRowActions;
}

const NEAR_BOTTOM_PX = 64;

function isTextField(target: EventTarget): boolean {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || target.tagName === 'TEXTAREA' || target.tagName === 'INPUT')
  );
}

/**
 * The conversation's messages, virtualized: only the rows in view (plus a few) are mounted, and
 * each row's real height is measured, so a 10,000-message conversation opens as fast as a short one.
 *
 * Sticks to the bottom while a reply streams, unless the reader has scrolled up; sending pins it again.
 */
export function MessageList({ conversationKey, messages, authorOf, canResend, actions }: MessageListProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  const shownKey = useRef<string | undefined>(undefined);
  const shownLastId = useRef<string | undefined>(undefined);
  const lastReplyIndex = messages.findLastIndex((message) => message.role === 'assistant');

  // TanStack Virtual's API returns functions the React Compiler cannot memoize; this component opts out.
  // eslint-disable-next-line react-hooks/incompatible-library
  const virtualizer = useVirtualizer({
    count: messages.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 120,
    overscan: 6,
    getItemKey: (index) => messages[index]?.id ?? index,
  });

  const last = messages[messages.length - 1];
  const lastId = last?.id;
  const lastIsSent = last?.role === 'user';
  const lastContent = last?.content;
  useLayoutEffect(() => {
    if (messages.length === 0) return;
    if (shownKey.current !== conversationKey) {
      shownKey.current = conversationKey;
      pinned.current = true;
    }
    // A message the user has just sent (a new one, an edit or a regenerate) brings the list back to
    // the bottom, even if they had scrolled up to reach the message they edited.
    if (lastId !== shownLastId.current && lastIsSent) pinned.current = true;
    shownLastId.current = lastId;
    if (pinned.current) virtualizer.scrollToIndex(messages.length - 1, { align: 'end' });
  }, [conversationKey, messages.length, lastId, lastIsSent, lastContent, virtualizer]);

  return (
    <div
      ref={scroller}
      className="message-list"
      data-testid="message-list"
      role="region"
      aria-label="Messages"
      tabIndex={0}
      onKeyDown={(event) => {
        // The browser's own Home/End scroll smoothly, and the virtualizer's corrections for rows measured on
        // the way (taller than estimated) cut that animation short, far from the end; jump by index instead.
        if (event.altKey || event.shiftKey || isTextField(event.target) || messages.length === 0) return;
        if (event.key === 'Home') {
          event.preventDefault();
          pinned.current = false;
          virtualizer.scrollToIndex(0, { align: 'start' });
        } else if (event.key === 'End') {
          event.preventDefault();
          pinned.current = true;
          virtualizer.scrollToIndex(messages.length - 1, { align: 'end' });
        }
      }}
      onScroll={(event) => {
        const element = event.currentTarget;
        pinned.current = element.scrollHeight - element.scrollTop - element.clientHeight < NEAR_BOTTOM_PX;
      }}
    >
      <div className="message-list-inner" style={{ height: virtualizer.getTotalSize() }}>
        {virtualizer.getVirtualItems().map((item) => {
          const message = messages[item.index];
          if (!message) return null;
          return (
            <div
              key={item.key}
              ref={virtualizer.measureElement}
              data-index={item.index}
              data-testid="message-row"
              className="message-slot"
              style={{ transform: `translateY(${item.start}px)` }}
            >
              <MessageRow
                message={message}
                author={authorOf(message)}
                isLastReply={item.index === lastReplyIndex}
                canResend={canResend}
                actions={actions}
              />
            </div>
          );
        })}
      </div>
    </div>
  );
}
