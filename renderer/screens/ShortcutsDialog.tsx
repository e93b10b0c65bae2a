import { Dialog } from '../components/Dialog';
import { hostOf } from '../components/format';
import { useActions, useAppState } from '../state/context';

/** The keyboard shortcuts, with the right modifier for the platform, and facts about the app. */
export function ShortcutsDialog() {
  const open = useAppState((state) => state.shortcutsOpen);
  const appInfo = useAppState((state) => state.appInfo);
  const { setShortcutsOpen } = useActions();
  if (!open) return null;
  const mod = appInfo?.platform === 'darwin' ? '⌘' : 'Ctrl';
  const shortcuts: readonly (readonly [string, string])[] = [
    ['Enter', 'Send the message'],
    ['Shift+Enter', 'New line in the message'],
    ['Esc', 'Stop the reply being written; close a dialog'],
    [`${mod}+K`, 'Search conversations'],
    [`${mod}+N`, 'New chat'],
    [`? or ${mod}+/`, 'Show this help'],
    ['↑ ↓ Home End', 'Move through the model list; Enter chooses'],
  ];
  return (
    <Dialog title="Keyboard shortcuts" onClose={() => setShortcutsOpen(false)} testId="shortcuts-dialog">
      <table className="shortcuts">
        <thead>
          <tr>
            <th scope="col">Keys</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {shortcuts.map(([keys, action]) => (
            <tr key={keys}>
              <td>
                <kbd>{keys}</kbd>
              </td>
              <td>{action}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {appInfo ? (
        <p className="muted small about">
          {appInfo.name} {appInfo.version} · {appInfo.platform} · gateway {hostOf(appInfo.gatewayUrl)}
        </p>
      ) : null}
    </Dialog>
  );
}
