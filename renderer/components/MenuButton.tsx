import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';

/** One action in a menu. */
export interface MenuAction {
  readonly key: string;
  readonly label: ReactNode;
  readonly onSelect: () => void;
}

/** Props of a menu button. */
export interface MenuButtonProps {
  /** The button's content. */
  readonly label: ReactNode;
  /** The button's accessible name when its content is not enough (an avatar, say). */
  readonly ariaLabel?: string;
  /** The menu's accessible name. */
  readonly menuLabel: string;
  readonly actions: readonly MenuAction[];
  /** Read-only content shown above the actions (outside the menu role, e.g. the signed-in identity). */
  readonly header?: ReactNode;
  readonly buttonClassName?: string;
  readonly panelClassName?: string;
  readonly testId?: string;
}

/**
 * A button that opens a menu of actions (WAI-ARIA APG menu button pattern).
 *
 * Enter, Space or ↓ open it on the first item, ↑ on the last; ↑ ↓ Home End move; Enter runs an
 * item; Esc closes and returns focus to the button; Tab or a click outside closes it. The panel
 * stays in the DOM while closed (hidden), so its text is present but not shown.
 */
export function MenuButton({
  label,
  ariaLabel,
  menuLabel,
  actions,
  header,
  buttonClassName = 'button',
  panelClassName = '',
  testId,
}: MenuButtonProps) {
  const [open, setOpen] = useState(false);
  const [focusIndex, setFocusIndex] = useState(-1);
  const [returnFocus, setReturnFocus] = useState(0);
  const menuId = useId();
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open || focusIndex < 0) return;
    menu.current?.querySelectorAll<HTMLElement>('[role="menuitem"]')[focusIndex]?.focus();
  }, [open, focusIndex]);

  useEffect(() => {
    if (returnFocus > 0) button.current?.focus();
  }, [returnFocus]);

  useEffect(() => {
    if (!open) return undefined;
    const onPointer = (event: MouseEvent) => {
      if (event.target instanceof Node && !root.current?.contains(event.target)) setOpen(false);
    };
    document.addEventListener('mousedown', onPointer);
    return () => document.removeEventListener('mousedown', onPointer);
  }, [open]);

  const show = (index: number) => {
    setOpen(true);
    setFocusIndex((index + actions.length) % actions.length);
  };
  const close = (refocus: boolean) => {
    setOpen(false);
    setFocusIndex(-1);
    if (refocus) setReturnFocus((count) => count + 1);
  };

  const onButtonKeyDown = (event: KeyboardEvent<HTMLButtonElement>) => {
    // Enter and Space reach onClick through the button's own activation.
    if (event.key === 'ArrowDown') {
      event.preventDefault();
      show(0);
    } else if (event.key === 'ArrowUp') {
      event.preventDefault();
      show(actions.length - 1);
    }
  };

  const onMenuKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const moves: Record<string, (index: number) => number> = {
      ArrowDown: (index) => index + 1,
      ArrowUp: (index) => index - 1,
      Home: () => 0,
      End: () => actions.length - 1,
    };
    const move = moves[event.key];
    if (move) {
      event.preventDefault();
      setFocusIndex((index) => (move(index) + actions.length) % actions.length);
    } else if (event.key === 'Escape') {
      event.preventDefault();
      close(true);
    } else if (event.key === 'Tab') {
      close(false);
    }
  };

  return (
    <div ref={root} className="menu-button" data-testid={testId}>
      <button
        ref={button}
        type="button"
        className={buttonClassName}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={menuId}
        aria-label={ariaLabel}
        onClick={() => (open ? close(false) : show(0))}
        onKeyDown={onButtonKeyDown}
      >
        {label}
      </button>
      <div className={`menu-panel ${panelClassName}`} hidden={!open}>
        {header}
        <div ref={menu} id={menuId} role="menu" aria-label={menuLabel} onKeyDown={onMenuKeyDown}>
          {actions.map((action) => (
            <button
              key={action.key}
              type="button"
              role="menuitem"
              tabIndex={-1}
              className="menu-item"
              onClick={() => {
                close(true);
                action.onSelect();
              }}
            >
              {action.label}
            </button>
          ))}
        </div>
      </div>
    </div>
  );
}
