import { z } from 'zod';
import { AttestationStep, DecisionReason } from './reasons';

/**
 * A link the user can follow to fix or appeal a restriction.
 */
export const Remediation = z.object({
  label: z.string().min(1),
  url: z.url({ protocol: /^https?$/ }),
  /** Who this step is for, in the policy author's words (e.g. "If you are not a US person"). */
  appliesTo: z.string().max(200).optional(),
});
export type Remediation = z.infer<typeof Remediation>;

/**
 * OpenAI's `error` object, carried by every gateway error body next to the problem fields.
 *
 * `code` is the decision's reason code when there is one (so OpenAI SDKs expose it as
 * `err.code`), otherwise the OAuth error (`invalid_token`, `use_dpop_nonce`…) or the problem
 * kind in snake case. Extra members (a stream error's `status`, `decisionId`…) are kept.
 */
export const ApiErrorObject = z.looseObject({
  message: z.string(),
  type: z.string(),
  code: z.string().nullable(),
  param: z.string().nullable(),
});
export type ApiErrorObject = z.infer<typeof ApiErrorObject>;

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
  /** OpenAI's error object (see `ApiErrorObject`); the gateway fills it in when it sends the problem. */
  error: ApiErrorObject.optional(),
  /** The request's id (`x-request-id`), shared by the log and the audit record. */
  requestId: z.string().optional(),
});
export type ProblemDetails = z.infer<typeof ProblemDetails>;

/** Media type of a gateway error body for clients that ask for it in `Accept`; others get `application/json`. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The error code OpenAI SDKs read (`err.code`) when a request parameter cannot be honoured. */
export const UNSUPPORTED_PARAMETER_CODE = 'unsupported_parameter';
