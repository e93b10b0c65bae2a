import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';
import type { ModelEntitlement } from '../../shared/entitlements';
import { ChevronDownIcon, LockIcon } from '../components/icons';
import { deniedTitle } from '../state/access';

/** Props of the model picker. */
export interface ModelPickerProps {
  /** Models to list (hidden ones already left out). */
  readonly models: readonly ModelEntitlement[];
  readonly value: string | undefined;
  readonly onSelect: (modelId: string) => void;
  /** Opens "Why is this unavailable?" for a denied model. */
  readonly onExplain: (modelId: string) => void;
  readonly disabled?: boolean;
}

const PAGE = 8;

function DemoBadge() {
  return <span className="badge badge-demo">Demo</span>;
}

/**
 * Chooses the model: a select-only combobox with a listbox popup (WAI-ARIA APG).
 *
 * Denied models are listed, greyed with a lock and the rule's short title, and `aria-disabled`.
 * As the APG advises for options in a listbox ("Focusability of disabled controls"), the arrow
 * keys still reach them so a screen reader can read why they are unavailable, but they can never
 * be selected: a click does nothing, and Enter or Space on one opens its explanation instead.
 * Each also carries a "Why?" control for the mouse (hidden from assistive tech, which has Enter).
 */
export function ModelPicker({ models, value, onSelect, onExplain, disabled = false }: ModelPickerProps) {
  const baseId = useId();
  const labelId = `${baseId}-label`;
  const listboxId = `${baseId}-listbox`;
  const hintId = `${baseId}-hint`;
  const optionId = (index: number) => `${baseId}-option-${index}`;
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const combobox = useRef<HTMLDivElement>(null);
  const selectedIndex = models.findIndex((model) => model.id === value);
  const selected = models[selectedIndex];

  useEffect(() => {
    if (!open || active < 0) return;
    document.getElementById(optionId(active))?.scrollIntoView?.({ block: 'nearest' });
    // optionId is derived from baseId, which never changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, active]);

  const show = (index: number) => {
    if (disabled || models.length === 0) return;
    setOpen(true);
    setActive(Math.max(0, Math.min(models.length - 1, index)));
  };
  const close = () => {
    setOpen(false);
    setActive(-1);
  };
  const explain = (model: ModelEntitlement) => {
    close();
    onExplain(model.id);
  };
  const choose = (index: number, via: 'keyboard' | 'pointer') => {
    const model = models[index];
    if (!model) return;
    if (model.status === 'allowed') {
      onSelect(model.id);
      close();
      combobox.current?.focus();
    } else if (via === 'keyboard') {
      explain(model);
    }
  };

  const typeahead = (key: string) => {
    const start = (open ? active : selectedIndex) + 1;
    for (let step = 0; step < models.length; step++) {
      const index = (start + step) % models.length;
      if (models[index]?.name.toLowerCase().startsWith(key.toLowerCase())) {
        show(index);
        return;
      }
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    if (disabled) return;
    const { key, altKey } = event;
    const handled = () => event.preventDefault();
    if (!open) {
      if (key === 'ArrowDown' || key === 'ArrowUp' || key === 'Enter' || key === ' ') {
        handled();
        show(selectedIndex >= 0 ? selectedIndex : 0);
      } else if (key === 'Home') {
        handled();
        show(0);
      } else if (key === 'End') {
        handled();
        show(models.length - 1);
      } else if (key.length === 1 && !event.ctrlKey && !event.metaKey && !altKey && key !== '?') {
        handled();
        typeahead(key);
      }
      return;
    }
    switch (key) {
      case 'ArrowDown':
        handled();
        setActive((index) => Math.min(models.length - 1, index + 1));
        break;
      case 'ArrowUp':
        handled();
        if (altKey) choose(active, 'keyboard');
        else setActive((index) => Math.max(0, index - 1));
        break;
      case 'Home':
        handled();
        setActive(0);
        break;
      case 'End':
        handled();
        setActive(models.length - 1);
        break;
      case 'PageDown':
        handled();
        setActive((index) => Math.min(models.length - 1, index + PAGE));
        break;
      case 'PageUp':
        handled();
        setActive((index) => Math.max(0, index - PAGE));
        break;
      case 'Enter':
      case ' ':
        handled();
        choose(active, 'keyboard');
        break;
      case 'Escape':
        handled();
        close();
        break;
      case 'Tab':
        close();
        break;
      default:
        if (key.length === 1 && !event.ctrlKey && !event.metaKey && !altKey) {
          handled();
          typeahead(key);
        }
    }
  };

  return (
    <div className="picker" data-testid="model-picker">
      <span id={labelId} className="picker-label">
        Model
      </span>
      <div
        ref={combobox}
        role="combobox"
        tabIndex={disabled ? -1 : 0}
        className="picker-button"
        aria-labelledby={labelId}
        aria-controls={listboxId}
        aria-expanded={open}
        aria-haspopup="listbox"
        aria-disabled={disabled || undefined}
        aria-activedescendant={open && active >= 0 ? optionId(active) : undefined}
        onClick={() => (open ? close() : show(selectedIndex >= 0 ? selectedIndex : 0))}
        onKeyDown={onKeyDown}
        onBlur={close}
      >
        <span className="picker-value">
          {selected ? (
            <>
              {selected.status !== 'allowed' ? <LockIcon /> : null}
              <span>{selected.name}</span>
              {selected.demo ? <DemoBadge /> : null}
            </>
          ) : (
            <span className="muted">{models.length ? 'Choose a model' : 'No models'}</span>
          )}
        </span>
        <ChevronDownIcon />
      </div>
      <span id={hintId} hidden>
        Press Enter to see why.
      </span>
      <div
        role="listbox"
        id={listboxId}
        aria-labelledby={labelId}
        className="picker-list"
        hidden={!open}
        // Keep focus on the combobox while the pointer works in the list.
        onMouseDown={(event) => event.preventDefault()}
      >
        {models.map((model, index) => {
          const denied = model.status !== 'allowed';
          const title = denied ? deniedTitle(model) : undefined;
          return (
            <div
              key={model.id}
              id={optionId(index)}
              role="option"
              aria-selected={model.id === value}
              aria-disabled={denied || undefined}
              aria-describedby={denied ? hintId : undefined}
              className={`picker-option${index === active ? ' is-active' : ''}${denied ? ' is-denied' : ''}`}
              data-model-id={model.id}
              onClick={() => choose(index, 'pointer')}
              onMouseMove={() => active !== index && setActive(index)}
            >
              <span className="picker-option-main">
                {denied ? <LockIcon className="icon picker-lock" /> : null}
                <span className="picker-option-name">{model.name}</span>
                {model.demo ? <DemoBadge /> : null}
                {denied ? <span className="visually-hidden">, unavailable: </span> : null}
                {title ? <span className="picker-option-reason">{title}</span> : null}
              </span>
              {model.description && !denied ? (
                <span className="picker-option-description">{model.description}</span>
              ) : null}
              {denied ? (
                <span
                  className="why-chip"
                  aria-hidden="true"
                  data-testid={`why-${model.id}`}
                  onClick={(event) => {
                    event.stopPropagation();
                    explain(model);
                  }}
                >
                  Why?
                </span>
              ) : null}
            </div>
          );
        })}
      </div>
    </div>
  );
}
