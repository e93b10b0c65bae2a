import { useId } from 'react';
import type { BlockingRule, ModelEntitlement } from '../../shared/entitlements';
import { Dialog } from '../components/Dialog';
import { ExternalIcon, LockIcon } from '../components/icons';
import { formatSince, reasonExplanations } from '../components/format';
import { deniedTitle } from '../state/access';
import { useActions, useAppState } from '../state/context';

/** Props of the "Why is this unavailable?" panel. */
export interface WhyPanelProps {
  readonly model: ModelEntitlement;
  /** The organisation's support contact, used when a rule names none of its own. */
  readonly supportContact?: string;
  readonly onClose: () => void;
  readonly onOpenLink: (url: string) => void;
}

/** The rules to explain: the document's list, or (from an older gateway) the one determining rule. */
function rulesOf(model: ModelEntitlement): BlockingRule[] {
  if (model.rules && model.rules.length > 0) return model.rules;
  const reason = model.reason ?? 'NOT_ENTITLED';
  return [
    {
      policy: model.policy ?? '',
      reason,
      title: deniedTitle(model),
      message: model.message ?? reasonExplanations[reason],
      ...(model.since ? { since: model.since } : {}),
      ...(model.remediation ? { remediations: [model.remediation] } : {}),
      ...(model.contact ? { contact: model.contact } : {}),
    },
  ];
}

/** One blocking rule: its words, id, date when it states one, what to do, and whom to ask. */
function RuleSection({
  rule,
  headingId,
  first,
  onOpenLink,
}: {
  readonly rule: BlockingRule;
  readonly headingId: string;
  readonly first: boolean;
  readonly onOpenLink: (url: string) => void;
}) {
  return (
    <section className="why-rule" aria-labelledby={headingId} data-testid="why-rule">
      <h3 id={headingId} className="why-rule-title">
        <LockIcon /> {rule.title}
      </h3>
      <p className="why-message">{rule.message}</p>
      <dl className="facts">
        <div>
          <dt>Rule</dt>
          <dd>{rule.policy ? <code>{rule.policy}</code> : 'Not named by the policy'}</dd>
        </div>
        <div>
          <dt>Reason code</dt>
          <dd>
            <code>{rule.reason}</code>
          </dd>
        </div>
        {rule.since ? (
          <div>
            <dt>In effect since</dt>
            <dd>
              <time dateTime={rule.since}>{formatSince(rule.since)}</time>
            </dd>
          </div>
        ) : null}
      </dl>
      {rule.remediations && rule.remediations.length > 0 ? (
        <ul className="why-actions" aria-label={`What you can do about ${rule.title.toLowerCase()}`}>
          {rule.remediations.map((remediation, index) => (
            <li key={remediation.url}>
              {remediation.appliesTo ? <span className="why-applies">{remediation.appliesTo}:</span> : null}
              <button
                type="button"
                className={first && index === 0 ? 'button button-primary' : 'button'}
                {...(first && index === 0 ? { 'data-autofocus': true } : {})}
                onClick={() => onOpenLink(remediation.url)}
              >
                <ExternalIcon /> {remediation.label}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      {rule.contact ? (
        <p className="why-contact">
          Questions about this rule? Contact <strong className="selectable">{rule.contact}</strong>.
        </p>
      ) : null}
    </section>
  );
}

/**
 * "Why is this unavailable?": every rule that blocks a model for this user, and what to do about each.
 *
 * Everything shown comes from the user's own entitlement document: each policy's title, message,
 * id and (when it states one) effective date, its remediations and a contact, most actionable first.
 * Nothing about any other person.
 */
export function WhyPanel({ model, supportContact, onClose, onOpenLink }: WhyPanelProps) {
  const rules = rulesOf(model);
  const idBase = useId();
  const anyContact = rules.some((rule) => rule.contact);
  return (
    <Dialog
      title={`Why is ${model.name} unavailable?`}
      description={
        rules.length > 1
          ? `${rules.length} rules block ${model.name} for you; each has to be resolved. The one you can act on soonest comes first.`
          : `One rule blocks ${model.name} for you.`
      }
      onClose={onClose}
      className="why-panel"
      testId="why-panel"
    >
      {rules.map((rule, index) => (
        <RuleSection
          key={`${rule.policy}-${index}`}
          rule={rule}
          headingId={`${idBase}-rule-${index}`}
          first={index === 0}
          onOpenLink={onOpenLink}
        />
      ))}
      {!anyContact && supportContact ? (
        <p className="why-contact">
          Questions about this rule? Contact <strong className="selectable">{supportContact}</strong>.
        </p>
      ) : null}
      <p className="why-note">
        This is how the rules apply to your account and this device. Clearance never shows anyone else’s details.
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
