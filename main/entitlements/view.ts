import type { EntitlementDocument, ModelEntitlement } from '../../shared/entitlements';
import type { EntitlementsView, LiveUpdateState } from '../../shared/ipc';
import { reasonTitles, type DecisionReason } from '../../shared/reasons';

/** What the app shows before anyone signs in, or after sign-out. */
export const NULL_ENTITLEMENTS_VIEW: EntitlementsView = Object.freeze({
  status: 'none',
  models: [],
  live: 'offline',
}) as EntitlementsView;

/** Whether one model may be used right now, and if not, why (in words for the user). */
export type ModelAccess =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly reason: DecisionReason;
      readonly title: string;
      readonly message: string;
      /** The rule that denied it, when a policy did. */
      readonly policy?: string;
    };

/** True once the document has passed its `exp` on the app's clock (no leeway: fail closed). */
export function isExpired(document: EntitlementDocument, now: number): boolean {
  return now >= document.exp * 1000;
}

/** A time as the stale message shows it: `2026-11-26 14:05 UTC`. */
export function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Inputs of {@link buildEntitlementsView}. */
export interface EntitlementsViewInput {
  readonly document?: EntitlementDocument;
  readonly now: number;
  /** The last time the gateway confirmed access (ms since the epoch). */
  readonly lastRefresh?: number;
  readonly live: LiveUpdateState;
  /**
   * The last attempt to reach the gateway failed (not merely "not tried yet"): while offline, no model
   * is shown as available, because nothing can be confirmed and no call can get through.
   */
  readonly unreachable?: boolean;
  readonly supportContact?: string;
  readonly lastError?: string;
}

function staleMessage(name: string, input: EntitlementsViewInput): string {
  const since = input.lastRefresh === undefined ? 'it started' : formatTime(input.lastRefresh);
  const what =
    input.live === 'offline'
      ? `Clearance could not reach the gateway since ${since}`
      : `Clearance has not been able to confirm your access with the gateway since ${since}`;
  const contact = input.supportContact ? ` If this continues, contact ${input.supportContact}.` : '';
  return (
    `${what}, so it cannot confirm that you may use ${name}. ` +
    `Check your network or VPN connection; Clearance reconnects by itself and access returns as soon as the gateway answers.` +
    contact
  );
}

/**
 * A model as shown once the document has expired: denied with `ENTITLEMENTS_STALE`, whatever it was.
 *
 * Hidden models stay hidden (staleness must not reveal them).
 */
export function staleModel(model: ModelEntitlement, input: EntitlementsViewInput): ModelEntitlement {
  if (model.status === 'hidden') return model;
  return {
    id: model.id,
    name: model.name,
    ...(model.description !== undefined ? { description: model.description } : {}),
    ...(model.demo !== undefined ? { demo: model.demo } : {}),
    status: 'denied',
    reason: 'ENTITLEMENTS_STALE',
    title: reasonTitles.ENTITLEMENTS_STALE,
    message: staleMessage(model.name, input),
    ...(input.lastRefresh !== undefined ? { since: new Date(input.lastRefresh).toISOString() } : {}),
    ...(input.supportContact ? { contact: input.supportContact } : {}),
  };
}

/**
 * The view the renderer gets: the verified document with staleness applied.
 *
 * Past `exp` every visible model is denied with `ENTITLEMENTS_STALE`. While the gateway is known to be
 * unreachable, the models it allowed are denied the same way (models a rule denies keep that rule), so
 * the banner, the picker and My access agree that nothing is available; the document's own status
 * stays `current` until `exp` (it is still the last good one).
 */
export function buildEntitlementsView(input: EntitlementsViewInput): EntitlementsView {
  const { document } = input;
  const common = {
    live: input.live,
    ...(input.supportContact ? { supportContact: input.supportContact } : {}),
    ...(input.lastRefresh !== undefined ? { lastRefresh: new Date(input.lastRefresh).toISOString() } : {}),
    ...(input.lastError !== undefined ? { lastError: input.lastError } : {}),
  };
  if (!document) return { status: 'none', models: [], ...common };
  const stale = isExpired(document, input.now);
  const offline = input.live === 'offline' && input.unreachable === true;
  return {
    status: stale ? 'stale' : 'current',
    models: stale
      ? document.models.map((model) => staleModel(model, input))
      : offline
        ? document.models.map((model) => (model.status === 'allowed' ? staleModel(model, input) : model))
        : document.models,
    ver: document.ver,
    expiresAt: new Date(document.exp * 1000).toISOString(),
    ...common,
  };
}

/**
 * Whether `modelId` may be used according to `view`: defence in depth before a chat request.
 *
 * Anything but a current document that plainly allows the model is refused.
 */
export function checkModelAccess(view: EntitlementsView, modelId: string): ModelAccess {
  if (view.status === 'none') {
    return {
      allowed: false,
      reason: 'ENTITLEMENTS_STALE',
      title: reasonTitles.ENTITLEMENTS_STALE,
      message:
        'Clearance has not received your entitlements from the gateway yet, so it cannot confirm which models you may use. ' +
        'Check your connection and try again in a moment.',
    };
  }
  const model = view.models.find((candidate) => candidate.id === modelId);
  if (!model) {
    return {
      allowed: false,
      reason: 'NOT_ENTITLED',
      title: reasonTitles.NOT_ENTITLED,
      message: `"${modelId}" is not among the models your entitlements list.`,
    };
  }
  if (model.status === 'allowed' && view.status === 'current') return { allowed: true };
  const reason = model.reason ?? 'NOT_ENTITLED';
  return {
    allowed: false,
    reason,
    title: model.title ?? reasonTitles[reason],
    message: model.message ?? `${model.name} is not available to you.`,
    ...(model.policy !== undefined ? { policy: model.policy } : {}),
  };
}
