import type { ModelEntitlement } from '../../shared/entitlements';
import { Dialog } from '../components/Dialog';
import { ExternalIcon, LockIcon } from '../components/icons';
import { formatSince, reasonExplanations } from '../components/format';
import { deniedTitle } from '../state/access';
import { useActions, useAppState } from '../state/context';

/** Props of the "Why is this unavailable?" panel. */
export interface WhyPanelProps {
  readonly model: ModelEntitlement;
  /** The organisation's support contact, used when the model names none of its own. */
  readonly supportContact?: string;
  readonly onClose: () => void;
  readonly onOpenLink: (url: string) => void;
}

/**
 * "Why is this unavailable?": the rule that blocks a model for this user, and what to do.
 *
 * Everything shown comes from the user's own entitlement document: the policy's title, message,
 * id and effective date, its remediation link and a contact. Nothing about any other person.
 */
export function WhyPanel({ model, supportContact, onClose, onOpenLink }: WhyPanelProps) {
  const title = deniedTitle(model);
  const message = model.message ?? (model.reason ? reasonExplanations[model.reason] : undefined);
  const contact = model.contact ?? supportContact;
  return (
    <Dialog
      title={`Why is ${model.name} unavailable?`}
      description={
        <>
          <LockIcon /> {title}
        </>
      }
      onClose={onClose}
      className="why-panel"
      testId="why-panel"
    >
      {message ? <p className="why-message">{message}</p> : null}
      <dl className="facts">
        <div>
          <dt>Rule</dt>
          <dd>{model.policy ? <code>{model.policy}</code> : 'Not named by the policy'}</dd>
        </div>
        {model.reason ? (
          <div>
            <dt>Reason code</dt>
            <dd>
              <code>{model.reason}</code>
            </dd>
          </div>
        ) : null}
        <div>
          <dt>In effect since</dt>
          <dd>{model.since ? <time dateTime={model.since}>{formatSince(model.since)}</time> : 'Not stated'}</dd>
        </div>
      </dl>
      {model.remediation ? (
        <div className="why-actions">
          <button
            type="button"
            className="button button-primary"
            data-autofocus
            onClick={() => model.remediation && onOpenLink(model.remediation.url)}
          >
            <ExternalIcon /> {model.remediation.label}
          </button>
        </div>
      ) : null}
      {contact ? (
        <p className="why-contact">
          Questions about this rule? Contact <strong className="selectable">{contact}</strong>.
        </p>
      ) : null}
      <p className="why-note">
        This is the rule as it applies to your account and this device. Clearance never shows anyone else’s details.
      </p>
    </Dialog>
  );
}

/** Shows the Why panel for the model the store says is being explained, if any. */
export function WhyPanelHost() {
  const modelId = useAppState((state) => state.whyModelId);
  const entitlements = useAppState((state) => state.entitlements);
  const { closeWhy, openExternal } = useActions();
  const model = modelId ? entitlements?.models.find((candidate) => candidate.id === modelId) : undefined;
  if (!model || model.status === 'allowed') return null;
  return (
    <WhyPanel
      model={model}
      supportContact={entitlements?.supportContact}
      onClose={closeWhy}
      onOpenLink={(url) => void openExternal(url)}
    />
  );
}
