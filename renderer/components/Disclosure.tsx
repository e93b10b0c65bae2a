import { useEffect, useId, useRef, useState, type ReactNode } from 'react';

/** Props of a disclosure popover. */
export interface DisclosureProps {
  /** The content of the button that opens and closes the panel. */
  readonly label: ReactNode;
  /** The button's accessible name when its content is not enough (e.g. an avatar). */
  readonly ariaLabel?: string;
  readonly buttonClassName?: string;
  readonly panelClassName?: string;
  /** The panel's content; `close` hides it (call it after an action). */
  readonly children: (close: () => void) => ReactNode;
  readonly testId?: string;
}

/**
 * A button that shows a small panel of controls below it (WAI-ARIA APG disclosure pattern).
 *
 * Used for the account and export popovers: a disclosure rather than a `menu`, because the
 * panels mix plain text with buttons. Esc or a click outside closes it and focus returns to the button.
 */
export function Disclosure({ label, ariaLabel, buttonClassName = 'button', panelClassName = '', children, testId }: DisclosureProps) {
  const [open, setOpen] = useState(false);
  const panelId = useId();
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!open) return undefined;
    const onPointer = (event: MouseEvent) => {
      if (event.target instanceof Node && !root.current?.contains(event.target)) setOpen(false);
    };
    document.addEventListener('mousedown', onPointer);
    return () => document.removeEventListener('mousedown', onPointer);
  }, [open]);

  const [returnFocus, setReturnFocus] = useState(0);
  useEffect(() => {
    if (returnFocus > 0) button.current?.focus();
  }, [returnFocus]);

  const close = () => {
    setOpen(false);
    setReturnFocus((count) => count + 1);
  };

  return (
    <div
      ref={root}
      className="disclosure"
      data-testid={testId}
      onKeyDown={(event) => {
        if (event.key === 'Escape' && open) {
          event.preventDefault();
          close();
        }
      }}
      onBlur={(event) => {
        if (open && event.relatedTarget instanceof Node && !root.current?.contains(event.relatedTarget)) setOpen(false);
      }}
    >
      <button
        ref={button}
        type="button"
        className={buttonClassName}
        aria-expanded={open}
        aria-controls={panelId}
        aria-label={ariaLabel}
        onClick={() => setOpen((value) => !value)}
      >
        {label}
      </button>
      <div id={panelId} className={`disclosure-panel ${panelClassName}`} hidden={!open}>
        {open ? children(close) : null}
      </div>
    </div>
  );
}
