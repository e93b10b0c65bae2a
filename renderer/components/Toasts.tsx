import { useEffect, useState } from 'react';
import { CloseIcon } from './icons';
import { useActions, useAppState } from '../state/context';
import type { Toast } from '../state/store';

const VISIBLE_MS = 10_000;

function ToastItem({ toast }: { readonly toast: Toast }) {
  const { dismissToast, restoreConversation } = useActions();
  const [held, setHeld] = useState(false);
  useEffect(() => {
    if (held) return undefined;
    const timer = setTimeout(() => dismissToast(toast.id), VISIBLE_MS);
    return () => clearTimeout(timer);
  }, [held, toast.id, dismissToast]);
  return (
    <li
      className={`toast toast-${toast.tone}`}
      onMouseEnter={() => setHeld(true)}
      onMouseLeave={() => setHeld(false)}
      onFocus={() => setHeld(true)}
      onBlur={() => setHeld(false)}
    >
      <p>{toast.text}</p>
      {toast.undoConversationId ? (
        <button
          type="button"
          className="button button-small"
          onClick={() => toast.undoConversationId && void restoreConversation(toast.undoConversationId, toast.id)}
        >
          Undo
        </button>
      ) : null}
      <button
        type="button"
        className="icon-button"
        aria-label="Dismiss notification"
        onClick={() => dismissToast(toast.id)}
      >
        <CloseIcon />
      </button>
    </li>
  );
}

/** Short notices in the corner (errors, exports, delete with Undo); they pause while hovered or focused. */
export function Toasts() {
  const toasts = useAppState((state) => state.toasts);
  return (
    <section className="toasts" aria-label="Notifications">
      <ul aria-live="polite" aria-relevant="additions">
        {toasts.map((toast) => (
          <ToastItem key={toast.id} toast={toast} />
        ))}
      </ul>
    </section>
  );
}

/** The polite live region that reads out what the store announces (reply finished, errors, copies). */
export function LiveRegion() {
  const announcement = useAppState((state) => state.announcement);
  return (
    <div className="visually-hidden" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
      <span key={announcement.id}>{announcement.text}</span>
    </div>
  );
}
