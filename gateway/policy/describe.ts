import { reasonTitles } from '../../shared/reasons';
import type { ModelEntitlement } from '../../shared/entitlements';
import type { Remediation } from '../../shared/problem';
import type { CatalogModel } from '../catalog';
import type { DevicePolicyState, PolicyDecision } from './engine';

/** Label used when a policy gives `@remediation` without `@remediation_label`. */
const DEFAULT_REMEDIATION_LABEL = 'How to get access';

/**
 * What the user is told about one model: the entitlement entry without id and name.
 *
 * The same value feeds the entitlement document, the 403 problem and the SSE error event,
 * so the three can never disagree.
 */
export type ModelOutcome = Omit<ModelEntitlement, 'id' | 'name' | 'description' | 'demo'>;

/**
 * Turns a decision into the text the user sees, from the determining policy's annotations.
 *
 * `{model}`, `{failedChecks}` and `{requiredGroups}` in `@message` are replaced with the
 * model's name, the device's failing required checks and the model's required groups.
 * A model is `hidden` when the catalog says `hidden-when-denied` or the determining forbid
 * carries `@visibility("hidden")`; hidden entries carry no reason text.
 */
export function describeDecision(
  decision: PolicyDecision,
  model: CatalogModel,
  device: DevicePolicyState,
): ModelOutcome {
  if (decision.effect === 'allow') return { status: 'allowed' };
  const reason = decision.reason ?? 'NOT_ENTITLED';
  const annotations = decision.annotations;
  if (model.visibility === 'hidden-when-denied' || annotations.visibility === 'hidden') return { status: 'hidden' };
  const fill = (template: string) =>
    template
      .replaceAll('{model}', model.name)
      .replaceAll('{failedChecks}', device.failedChecks.length > 0 ? device.failedChecks.join(', ') : 'none reported')
      .replaceAll('{requiredGroups}', model.attributes.requiredGroups.join(', '));
  const message = annotations.message
    ? fill(annotations.message)
    : reason === 'NOT_ENTITLED'
      ? `No policy grants you access to ${model.name}.`
      : `${model.name} is not available to you (${reasonTitles[reason]}).`;
  const since = annotations.since ?? model.since;
  const remediation: Remediation | undefined = annotations.remediation
    ? { label: annotations.remediation_label ?? DEFAULT_REMEDIATION_LABEL, url: annotations.remediation }
    : undefined;
  return {
    status: 'denied',
    reason,
    title: annotations.title ?? reasonTitles[reason],
    message,
    ...(decision.policy ? { policy: decision.policy } : {}),
    ...(since ? { since } : {}),
    ...(remediation ? { remediation } : {}),
    ...(annotations.contact ? { contact: annotations.contact } : {}),
  };
}
