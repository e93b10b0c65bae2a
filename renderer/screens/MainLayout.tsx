import { useEffect, useId, useState } from 'react';
import { AccessBanner } from '../access/LiveState';
import { MyAccessPage } from '../access/MyAccessPage';
import { PoliciesPage } from '../settings/PoliciesPage';
import { SettingsPage } from '../settings/SettingsPage';
import { ChatView } from '../chat/ChatView';
import { WhyPanelHost } from '../chat/WhyPanel';
import { Sidebar } from '../sidebar/Sidebar';
import { useActions, useAppState } from '../state/context';
import { WarningIcon } from '../components/icons';
import { DeviceLimitedBanner } from './DeviceGateScreen';
import { Header } from './Header';
import { ShortcutsDialog } from './ShortcutsDialog';
import { UpdateBanner } from './UpdateNotices';

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

/** Registers the app-wide keyboard shortcuts (Ctrl/Cmd+K, Ctrl/Cmd+N, ? and Ctrl+/, Esc). */
function useGlobalShortcuts(): void {
  const { requestSearchFocus, newChat, setShortcutsOpen, stop } = useActions();
  useEffect(() => {
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.defaultPrevented) return;
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      if (mod && !event.altKey && key === 'k') {
        event.preventDefault();
        requestSearchFocus();
      } else if (mod && !event.altKey && !event.shiftKey && key === 'n') {
        event.preventDefault();
        newChat();
      } else if ((mod && key === '/') || (event.key === '?' && !mod && !event.altKey && !isTyping(event.target))) {
        event.preventDefault();
        setShortcutsOpen(true);
      } else if (event.key === 'Escape' && !document.querySelector('[aria-modal="true"]')) {
        void stop();
      }
    };
    window.addEventListener('keydown', onKeyDown);
    return () => window.removeEventListener('keydown', onKeyDown);
  }, [requestSearchFocus, newChat, setShortcutsOpen, stop]);
}

/** The banner shown while conversations cannot be saved (a full disk): they stay readable, changes may be lost. */
function SaveBanner() {
  const problem = useAppState((state) => state.saveProblem);
  if (!problem) return null;
  return (
    <div className="banner banner-warning" role="status" data-testid="save-banner">
      <WarningIcon />
      <p>
        <strong>Read-only</strong> — {problem}
      </p>
    </div>
  );
}

/** The signed-in app: header, conversations, and the chat or My access. */
export function MainLayout({ onReviewDevice }: { readonly onReviewDevice?: () => void } = {}) {
  const view = useAppState((state) => state.view);
  const entitlements = useAppState((state) => state.entitlements);
  const activeConversationId = useAppState((state) => state.activeConversationId);
  const sidebarId = useId();
  // In a narrow window the sidebar is an overlay, open only for the place it was opened at:
  // choosing a conversation or a section puts it away.
  const place = `${view}|${activeConversationId ?? ''}`;
  const [openAt, setOpenAt] = useState<string | undefined>(undefined);
  const sidebarOpen = openAt === place;
  const setSidebarOpen = (open: boolean) => setOpenAt(open ? place : undefined);
  useGlobalShortcuts();

  useEffect(() => {
    if (!sidebarOpen) return undefined;
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key !== 'Escape' || document.querySelector('[aria-modal="true"]')) return;
      event.preventDefault();
      setOpenAt(undefined);
      document.querySelector<HTMLElement>(`[aria-controls="${CSS.escape(sidebarId)}"]`)?.focus();
    };
    window.addEventListener('keydown', onKeyDown, true);
    return () => window.removeEventListener('keydown', onKeyDown, true);
  }, [sidebarOpen, sidebarId]);

  return (
    <div className="app-shell">
      <Header sidebarId={sidebarId} sidebarOpen={sidebarOpen} onToggleSidebar={() => setSidebarOpen(!sidebarOpen)} />
      <SaveBanner />
      {onReviewDevice ? <DeviceLimitedBanner onReview={onReviewDevice} /> : null}
      <UpdateBanner />
      {view === 'chat' ? <AccessBanner view={entitlements} /> : null}
      <div className={`app-body${sidebarOpen ? ' is-sidebar-open' : ''}`}>
        <Sidebar id={sidebarId} />
        <main className="app-main">
          {view === 'chat' ? (
            <ChatView />
          ) : view === 'settings' ? (
            <SettingsPage />
          ) : view === 'policies' ? (
            <PoliciesPage />
          ) : (
            <MyAccessPage />
          )}
        </main>
      </div>
      <WhyPanelHost />
      <ShortcutsDialog />
    </div>
  );
}
