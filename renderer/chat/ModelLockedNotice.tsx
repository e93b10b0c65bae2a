import { useId, useState } from 'react';
import type { ModelEntitlement } from '../../shared/entitlements';
import { LockIcon } from '../components/icons';
import type { ModelAccess } from '../state/access';

/** Props of the notice that replaces sending when the chat's model is unavailable. */
export interface ModelLockedNoticeProps {
  readonly id: string;
  readonly access: Exclude<ModelAccess, { kind: 'allowed' }>;
  readonly modelName: string;
  /** Models the chat can continue with. */
  readonly alternatives: readonly ModelEntitlement[];
  readonly onContinue: (modelId: string) => void;
  readonly onExplain: (modelId: string) => void;
  readonly onShowAccess: () => void;
  /** The conversation already has messages (the model was revoked while it was open). */
  readonly hasHistory: boolean;
  /** The reply just above already names this reason and its rule, so the notice does not repeat it. */
  readonly reasonShownAbove?: boolean;
}

/**
 * Says why this chat cannot send and offers to continue with a permitted model.
 *
 * A live region, so a revocation that arrives while the chat is open is announced.
 */
export function ModelLockedNotice({
  id,
  access,
  modelName,
  alternatives,
  onContinue,
  onExplain,
  onShowAccess,
  hasHistory,
  reasonShownAbove = false,
}: ModelLockedNoticeProps) {
  const [choice, setChoice] = useState<string | undefined>(undefined);
  const selectId = useId();
  const chosen = alternatives.find((model) => model.id === choice) ?? alternatives[0];
  return (
    <div className="locked-notice" role="status" data-testid="model-locked">
      <p id={id} className="locked-notice-text">
        <LockIcon />
        <span>
          <strong>{modelName} is unavailable</strong>
          {reasonShownAbove ? ', as the reply above says.' : `: ${access.title}.`}
          {hasHistory ? ' Your conversation is kept.' : ''}{' '}
        </span>
        {access.kind === 'denied' && !reasonShownAbove ? (
          <button type="button" className="link-button" onClick={() => onExplain(access.model.id)}>
            Why?
          </button>
        ) : null}
      </p>
      {chosen ? (
        <div className="locked-notice-continue">
          <label htmlFor={selectId}>Continue with</label>
          <select id={selectId} value={chosen.id} onChange={(event) => setChoice(event.target.value)}>
            {alternatives.map((model) => (
              <option key={model.id} value={model.id}>
                {model.name}
                {model.demo ? ' (Demo)' : ''}
              </option>
            ))}
          </select>
          <button type="button" className="button button-primary" onClick={() => onContinue(chosen.id)}>
            Continue with {chosen.name}
          </button>
        </div>
      ) : (
        <p className="locked-notice-text">
          No model is available to you right now.{' '}
          <button type="button" className="link-button" onClick={onShowAccess}>
            See My access
          </button>
        </p>
      )}
    </div>
  );
}
