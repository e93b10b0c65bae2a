import { MenuButton } from '../components/MenuButton';
import {
  ChatIcon,
  KeyboardIcon,
  KeyIcon,
  LogoIcon,
  MenuIcon,
  MoonIcon,
  SettingsIcon,
  SignOutIcon,
  SunIcon,
  SwitchIcon,
  SystemIcon,
} from '../components/icons';
import { MANAGED_NOTICE } from '../../shared/managedPolicy';
import { isLocked } from '../state/policy';
import { themeLabels, themeOrder } from '../state/preferences';
import { useActions, useAppState } from '../state/context';

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '') + (parts.length > 1 ? (parts[parts.length - 1]?.[0] ?? '') : '')).toUpperCase() || '?';
}

/** The signed-in identity (name, username, organisation — never a token) with sign-out and switch. */
function AccountMenu() {
  const account = useAppState((state) => state.session?.account);
  const persistence = useAppState((state) => state.session?.tokenPersistence);
  const { signOut, switchAccount } = useActions();
  if (!account) return null;
  return (
    <MenuButton
      testId="account-menu"
      buttonClassName="account-button"
      panelClassName="align-end account-panel"
      ariaLabel={`Account: ${account.name}`}
      menuLabel="Account"
      label={
        <>
          <span className="avatar" aria-hidden="true">
            {initials(account.name)}
          </span>
          <span className="account-name">{account.name}</span>
        </>
      }
      header={
        <div className="account-identity">
          <p className="account-identity-name">{account.name}</p>
          <p className="muted">{account.username}</p>
          {account.tenantId ? <p className="muted">Organisation: {account.tenantId}</p> : null}
          <p className="muted small">
            {persistence === 'session-only'
              ? 'Sign-in is not remembered on this computer.'
              : 'Sign-in is remembered, encrypted by this computer.'}
          </p>
        </div>
      }
      actions={[
        {
          key: 'switch',
          label: (
            <>
              <SwitchIcon /> Switch account
            </>
          ),
          onSelect: () => void switchAccount(),
        },
        {
          key: 'sign-out',
          label: (
            <>
              <SignOutIcon /> Sign out
            </>
          ),
          onSelect: () => void signOut(),
        },
      ]}
    />
  );
}

/** Props of the app header. */
export interface HeaderProps {
  /** The id of the conversations sidebar, which the toggle shows and hides in a narrow window. */
  readonly sidebarId: string;
  readonly sidebarOpen: boolean;
  readonly onToggleSidebar: () => void;
}

/**
 * The app header: brand, the two sections (Chat, My access), theme, help and the account.
 *
 * In a narrow window (or at a large zoom) the sidebar folds away behind the Conversations toggle.
 */
export function Header({ sidebarId, sidebarOpen, onToggleSidebar }: HeaderProps) {
  const view = useAppState((state) => state.view);
  const theme = useAppState((state) => state.theme);
  const { showView, cycleTheme, setShortcutsOpen, exportDiagnostics } = useActions();
  const themeLocked = useAppState((state) => isLocked(state.policy, 'theme'));
  const next = themeOrder[(themeOrder.indexOf(theme) + 1) % themeOrder.length] ?? 'system';
  const ThemeIcon = theme === 'light' ? SunIcon : theme === 'dark' ? MoonIcon : SystemIcon;
  return (
    <header className="app-header">
      <button
        type="button"
        className="icon-button sidebar-toggle"
        aria-label="Conversations"
        aria-expanded={sidebarOpen}
        aria-controls={sidebarId}
        title={sidebarOpen ? 'Hide conversations' : 'Show conversations'}
        onClick={onToggleSidebar}
      >
        <MenuIcon />
      </button>
      <div className="brand">
        <LogoIcon className="icon brand-logo" />
        <span>Clearance</span>
      </div>
      <nav className="header-nav" aria-label="Sections">
        <button
          type="button"
          className="nav-button"
          aria-current={view === 'chat' ? 'page' : undefined}
          onClick={() => showView('chat')}
        >
          <ChatIcon /> Chat
        </button>
        <button
          type="button"
          className="nav-button"
          aria-current={view === 'access' ? 'page' : undefined}
          onClick={() => showView('access')}
        >
          <KeyIcon /> My access
        </button>
        <button
          type="button"
          className="nav-button"
          aria-current={view === 'settings' || view === 'policies' ? 'page' : undefined}
          onClick={() => showView('settings')}
        >
          <SettingsIcon /> Settings
        </button>
      </nav>
      <div className="header-actions">
        <button
          type="button"
          className="icon-button"
          aria-label={
            themeLocked
              ? `Theme: ${themeLabels[theme]}. ${MANAGED_NOTICE}`
              : `Theme: ${themeLabels[theme]}. Switch to ${themeLabels[next]}`
          }
          title={themeLocked ? `Theme: ${themeLabels[theme]} (${MANAGED_NOTICE})` : `Theme: ${themeLabels[theme]}`}
          aria-disabled={themeLocked || undefined}
          onClick={cycleTheme}
        >
          <ThemeIcon />
        </button>
        <MenuButton
          testId="help-menu"
          buttonClassName="icon-button"
          ariaLabel="Help and keyboard shortcuts"
          menuLabel="Help"
          label={<KeyboardIcon />}
          actions={[
            { key: 'shortcuts', label: 'Keyboard shortcuts', onSelect: () => setShortcutsOpen(true) },
            { key: 'diagnostics', label: 'Export diagnostics', onSelect: () => void exportDiagnostics() },
          ]}
        />
        <AccountMenu />
      </div>
    </header>
  );
}
