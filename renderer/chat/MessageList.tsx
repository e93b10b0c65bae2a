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

/**
 * The conversation's messages, virtualized: only the rows in view (plus a few) are mounted, and
 * each row's real height is measured, so a 10,000-message conversation opens as fast as a short one.
 *
 * Sticks to the bottom while a reply streams, unless the reader has scrolled up.
 */
export function MessageList({ conversationKey, messages, authorOf, canResend, actions }: MessageListProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  const shownKey = useRef<string | undefined>(undefined);
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
  useLayoutEffect(() => {
    if (messages.length === 0) return;
    if (shownKey.current !== conversationKey) {
      shownKey.current = conversationKey;
      pinned.current = true;
    }
    if (pinned.current) virtualizer.scrollToIndex(messages.length - 1, { align: 'end' });
  }, [conversationKey, messages.length, last?.content, virtualizer]);

  return (
    <div
      ref={scroller}
      className="message-list"
      data-testid="message-list"
      role="region"
      aria-label="Messages"
      tabIndex={0}
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
