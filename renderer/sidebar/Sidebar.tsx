import { useEffect, useRef, useState } from 'react';
import type { ConversationSummary } from '../../shared/ipc';
import { EditIcon, PlusIcon, SearchIcon, TrashIcon } from '../components/icons';
import { formatRelative } from '../components/format';
import { modelName } from '../state/access';
import { useActions, useAppState } from '../state/context';

const SEARCH_DELAY_MS = 250;

function ConversationItem({ summary, active }: { readonly summary: ConversationSummary; readonly active: boolean }) {
  const { openConversation, renameConversation, deleteConversation } = useActions();
  const entitlements = useAppState((state) => state.entitlements);
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState(summary.title);
  const renameButton = useRef<HTMLButtonElement>(null);
  const renameDone = useRef(false);

  const finishRename = async (save: boolean) => {
    if (renameDone.current) return;
    renameDone.current = true;
    if (save && title.trim() && title.trim() !== summary.title) await renameConversation(summary.id, title);
    setRenaming(false);
    renameButton.current?.focus();
  };

  return (
    <li
      className={`conversation${active ? ' is-active' : ''}`}
      data-testid="conversation-item"
      data-conversation-id={summary.id}
    >
      {renaming ? (
        <input
          className="conversation-rename"
          aria-label="Conversation title"
          value={title}
          maxLength={200}
          autoFocus
          onChange={(event) => setTitle(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter') {
              event.preventDefault();
              void finishRename(true);
            } else if (event.key === 'Escape') {
              event.preventDefault();
              setTitle(summary.title);
              void finishRename(false);
            }
          }}
          onBlur={() => void finishRename(true)}
        />
      ) : (
        <button
          type="button"
          className="conversation-open"
          aria-current={active ? 'page' : undefined}
          title={summary.title}
          onClick={() => void openConversation(summary.id)}
        >
          <span className="conversation-title">{summary.title}</span>
          {summary.snippet ? <span className="conversation-snippet">{summary.snippet}</span> : null}
          <span className="conversation-meta">
            {modelName(entitlements, summary.model)} · {formatRelative(summary.updatedAt)}
          </span>
        </button>
      )}
      {renaming ? null : (
        <div className="conversation-actions">
          <button
            ref={renameButton}
            type="button"
            className="icon-button"
            aria-label={`Rename “${summary.title}”`}
            title="Rename"
            onClick={() => {
              setTitle(summary.title);
              renameDone.current = false;
              setRenaming(true);
            }}
          >
            <EditIcon />
          </button>
          <button
            type="button"
            className="icon-button"
            aria-label={`Delete “${summary.title}”`}
            title="Delete"
            onClick={() => void deleteConversation(summary.id)}
          >
            <TrashIcon />
          </button>
        </div>
      )}
    </li>
  );
}

/**
 * The conversations sidebar: new chat, search across titles and text, and the list with
 * inline rename and delete (undone from the toast).
 */
export function Sidebar({ id }: { readonly id?: string }) {
  const { newChat, searchConversations } = useActions();
  const conversations = useAppState((state) => state.conversations);
  const loaded = useAppState((state) => state.conversationsLoaded);
  const activeId = useAppState((state) => state.activeConversationId);
  const focusRequest = useAppState((state) => state.searchFocusRequest);
  const [query, setQuery] = useState('');
  const search = useRef<HTMLInputElement>(null);
  const first = useRef(true);

  useEffect(() => {
    if (first.current) {
      first.current = false;
      return undefined;
    }
    const timer = setTimeout(() => void searchConversations(query), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [query, searchConversations]);

  useEffect(() => {
    if (focusRequest) {
      search.current?.focus();
      search.current?.select();
    }
  }, [focusRequest]);

  return (
    <nav className="sidebar" id={id} aria-label="Conversations">
      <div className="sidebar-top">
        <button type="button" className="button button-primary new-chat" onClick={newChat}>
          <PlusIcon /> New chat
        </button>
        <div className="search-field">
          <SearchIcon />
          <input
            ref={search}
            type="search"
            aria-label="Search conversations"
            placeholder="Search conversations"
            value={query}
            onChange={(event) => setQuery(event.target.value)}
            onKeyDown={(event) => {
              if (event.key === 'Escape' && query) {
                event.preventDefault();
                setQuery('');
              }
            }}
          />
        </div>
      </div>
      {conversations.length > 0 ? (
        <ul className="conversation-list" aria-label={query.trim() ? 'Search results' : 'Recent conversations'}>
          {conversations.map((summary) => (
            <ConversationItem key={summary.id} summary={summary} active={summary.id === activeId} />
          ))}
        </ul>
      ) : (
        <p className="sidebar-empty">
          {!loaded
            ? 'Loading conversations…'
            : query.trim()
              ? `No conversations match “${query.trim()}”.`
              : 'No conversations yet.'}
        </p>
      )}
    </nav>
  );
}
