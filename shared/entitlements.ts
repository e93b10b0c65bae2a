import { z } from 'zod';
import { DecisionReason } from './reasons';
import { Remediation } from './problem';
import { DeviceAssurance } from './device';

/** The `typ` header of an entitlement document JWS. */
export const ENTITLEMENTS_TYP = 'entitlements+jwt';
/** The `aud` of every entitlement document. */
export const ENTITLEMENTS_AUDIENCE = 'clearance-desktop';

/**
 * One rule that blocks a model for this user, in its author's words (from the policy's annotations).
 *
 * `since` is the rule's own effective date and is absent when the rule states none.
 */
export const BlockingRule = z.object({
  policy: z.string().min(1),
  reason: DecisionReason,
  title: z.string(),
  message: z.string(),
  since: z.string().optional(),
  remediations: z.array(Remediation).max(4).optional(),
  contact: z.string().optional(),
});
export type BlockingRule = z.infer<typeof BlockingRule>;

/**
 * One model as the entitlement document describes it to one user.
 *
 * Denied entries carry the rule that denied them (from the policy's annotations);
 * `hidden` models are left out of the picker entirely.
 */
export const ModelEntitlement = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  description: z.string().optional(),
  demo: z.boolean().optional(),
  status: z.enum(['allowed', 'denied', 'hidden']),
  reason: DecisionReason.optional(),
  title: z.string().optional(),
  message: z.string().optional(),
  policy: z.string().optional(),
  since: z.string().optional(),
  remediation: Remediation.optional(),
  contact: z.string().optional(),
  /** Every rule that blocks the model, most actionable first (the fields above name the determining one). */
  rules: z.array(BlockingRule).max(16).optional(),
});
export type ModelEntitlement = z.infer<typeof ModelEntitlement>;

/**
 * Claims of the signed per-user entitlement document (`typ: entitlements+jwt`).
 */
export const EntitlementDocument = z.object({
  iss: z.string(),
  aud: z.literal(ENTITLEMENTS_AUDIENCE),
  sub: z.string(),
  iat: z.number().int(),
  exp: z.number().int(),
  ver: z.number().int().nonnegative(),
  cnf: z.object({ jkt: z.string() }),
  device: z.object({
    id: z.string(),
    assurance: DeviceAssurance,
    compliant: z.boolean(),
  }),
  models: z.array(ModelEntitlement),
});
export type EntitlementDocument = z.infer<typeof EntitlementDocument>;
