import type { BlockingRule } from '../shared/entitlements';
import type { Remediation } from '../shared/problem';
import { reasonTitles, type DecisionReason } from '../shared/reasons';
import type { CatalogModel } from './catalog';
import type { DevicePolicyState, PolicyDecision, PolicyInfo } from './policy/engine';

/** How many alternative remediations a rule may name: `@remediation`, then `@remediation_2` … `@remediation_4`. */
const MAX_REMEDIATIONS = 4;
/** Label used when a policy gives a remediation URL without its label. */
const DEFAULT_LABEL = 'How to get access';

/**
 * Reasons in the order the Why panel lists them: what the person can act on soonest first, what
 * nobody can change (a suspension) last. The determining reason (the one the picker and the 403
 * name) follows the engine's own precedence instead.
 */
export const ACTIONABLE_ORDER: readonly DecisionReason[] = [
  'DEVICE_NOT_COMPLIANT',
  'GROUP_MEMBERSHIP_REQUIRED',
  'IDENTITY_VERIFICATION_PENDING',
  'EXPORT_CONTROL_US_PERSON_REQUIRED',
  'DEVICE_ASSURANCE_TOO_LOW',
  'NOT_ENTITLED',
  'MODEL_SUSPENDED',
];

function httpUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The remediations a rule's author wrote: `@remediation`, `@remediation_label`, `@remediation_for`
 * (who it applies to, e.g. "If you are not a US person"), then the same with `_2`, `_3`, `_4`.
 */
function remediationsOf(annotations: Readonly<Record<string, string>>): Remediation[] {
  const found: Remediation[] = [];
  for (let n = 1; n <= MAX_REMEDIATIONS; n++) {
    const prefix = n === 1 ? 'remediation' : `remediation_${n}`;
    const url = httpUrl(annotations[prefix]);
    if (!url) continue;
    const appliesTo = annotations[`${prefix}_for`];
    found.push({ label: annotations[`${prefix}_label`] ?? DEFAULT_LABEL, url, ...(appliesTo ? { appliesTo } : {}) });
  }
  return found;
}

/**
 * Every forbid that blocks a model for this person, each with its own words, date and remediations.
 *
 * From the determining policies of the decision and their annotations, most actionable first. `since`
 * is the rule's own `@since` and is left out when the rule states none (never the catalog's date).
 */
export function blockingRules(
  decision: PolicyDecision,
  policies: ReadonlyMap<string, PolicyInfo>,
  model: CatalogModel,
  device: DevicePolicyState,
): BlockingRule[] {
  if (decision.effect === 'allow') return [];
  const fill = (template: string) =>
    template
      .replaceAll('{model}', model.name)
      .replaceAll('{failedChecks}', device.failedChecks.length > 0 ? device.failedChecks.join(', ') : 'none reported')
      .replaceAll('{requiredGroups}', model.attributes.requiredGroups.join(', '));
  const rules: BlockingRule[] = [];
  for (const id of decision.determining) {
    const policy = policies.get(id);
    if (!policy || policy.effect !== 'forbid') continue;
    const { annotations } = policy;
    const reason = annotations.reason as DecisionReason;
    const remediations = remediationsOf(annotations);
    rules.push({
      policy: id,
      reason,
      title: annotations.title ?? reasonTitles[reason],
      message: annotations.message ? fill(annotations.message) : `${model.name} is not available to you.`,
      ...(annotations.since ? { since: annotations.since } : {}),
      ...(remediations.length > 0 ? { remediations } : {}),
      ...(annotations.contact ? { contact: annotations.contact } : {}),
    });
  }
  const rank = (rule: BlockingRule) => ACTIONABLE_ORDER.indexOf(rule.reason);
  return rules.sort((a, b) => rank(a) - rank(b) || (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0));
}
