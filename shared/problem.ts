import { z } from 'zod';
import { AttestationStep, DecisionReason } from './reasons';

/**
 * A link the user can follow to fix or appeal a restriction.
 */
export const Remediation = z.object({
  label: z.string().min(1),
  url: z.url({ protocol: /^https?$/ }),
});
export type Remediation = z.infer<typeof Remediation>;

/**
 * An RFC 9457 problem document as every gateway error is sent.
 *
 * `reason`, `policy` and `decisionId` are present whenever the error is an access decision,
 * so the 403, the entitlement document and the audit record name the same rule.
 */
export const ProblemDetails = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  reason: DecisionReason.optional(),
  policy: z.string().optional(),
  decisionId: z.string().optional(),
  message: z.string().optional(),
  remediation: Remediation.optional(),
  /** With `DEVICE_ATTESTATION_FAILED`: which step of the TPM key attestation failed. */
  step: AttestationStep.optional(),
  /** Set on invalid_token / use_dpop_nonce style errors. */
  error: z.string().optional(),
});
export type ProblemDetails = z.infer<typeof ProblemDetails>;

/** Media type of every gateway error body. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
