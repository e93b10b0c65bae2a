import { reasonTitles } from '../../shared/reasonTitles';
import type { ModelEntitlement } from '../../shared/entitlements';
import type { EntitlementsView } from '../../shared/ipc';

/**
 * Whether the signed-in user may use one model right now, as the current entitlements say.
 *
 * `unlisted` covers a model the document does not mention (or hides): the client fails closed.
 */
export type ModelAccess =
  | { readonly kind: 'allowed'; readonly model: ModelEntitlement }
  | { readonly kind: 'denied'; readonly model: ModelEntitlement; readonly title: string }
  | { readonly kind: 'unlisted'; readonly modelId: string; readonly title: string };

/** The short title of why a model is unavailable: the policy's own title, else the reason's. */
export function deniedTitle(model: ModelEntitlement): string {
  if (model.title) return model.title;
  if (model.reason) return reasonTitles[model.reason];
  return 'Not available to you';
}

/** Looks up what the entitlements say about one model. */
export function modelAccess(view: EntitlementsView | undefined, modelId: string): ModelAccess {
  const model = view?.models.find((candidate) => candidate.id === modelId);
  if (!model || model.status === 'hidden') {
    return {
      kind: 'unlisted',
      modelId,
      title: view && view.status !== 'none' ? 'No longer in your access' : 'Checking your access…',
    };
  }
  if (model.status === 'allowed') return { kind: 'allowed', model };
  return { kind: 'denied', model, title: deniedTitle(model) };
}

/** Models the picker and My access list: every model except those policy hides. */
export function listedModels(view: EntitlementsView | undefined): readonly ModelEntitlement[] {
  return view?.models.filter((model) => model.status !== 'hidden') ?? [];
}

/** Models the user may chat with right now. */
export function allowedModels(view: EntitlementsView | undefined): readonly ModelEntitlement[] {
  return view?.models.filter((model) => model.status === 'allowed') ?? [];
}

/** The name to show for a model id, falling back to the id when the document does not name it. */
export function modelName(view: EntitlementsView | undefined, modelId: string): string {
  return view?.models.find((model) => model.id === modelId)?.name ?? modelId;
}

/**
 * Models that were unavailable in `before` and may be used in `after` (a rule lifted, the gateway back).
 *
 * Empty when there is no earlier view to compare with (sign-in, a new person), so nothing is announced then.
 */
export function regainedModels(
  before: EntitlementsView | undefined,
  after: EntitlementsView,
): readonly ModelEntitlement[] {
  if (!before || before.status === 'none') return [];
  return after.models.filter(
    (model) =>
      model.status === 'allowed' &&
      before.models.some((earlier) => earlier.id === model.id && earlier.status === 'denied'),
  );
}

/** "Mythos 5 is available again." / "Haiku 4 and Mythos 5 are available again." */
export function availableAgainText(models: readonly ModelEntitlement[]): string {
  const names = models.map((model) => model.name);
  if (names.length === 1) return `${names[0]} is available again.`;
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are available again.`;
}
