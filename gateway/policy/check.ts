import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { DecisionReason, ENROLMENT_REASONS } from '../../shared/reasons';
import { checkAgainstManifest, readPolicyCandidate, type PolicyCandidate } from './candidate';

/** The Cedar schema every policy set is validated against (strict mode). */
export const SCHEMA_PATH = fileURLToPath(new URL('./clearance.cedarschema', import.meta.url));

/** Policy id reported when no permit applies and no forbid does either. */
export const DEFAULT_DENY_POLICY = 'default-deny';

/** One policy of a set, with the annotations that explain it. */
export interface PolicyInfo {
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  readonly file: string;
  readonly text: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * What reading and checking a policies folder found, each stage kept apart so the engine can
 * apply its rules in a fixed order (a file of the set in force that went missing is reported
 * before a parse error, for instance).
 *
 * This is the expensive, synchronous part of a reload (Cedar parse and schema validation); the
 * gateway runs it in a worker thread (`check-worker.ts`) so its event loop never waits for it.
 */
export type PolicyInspection =
  | {
      /** The folder could not be read, or its manifest is unreadable or invalid. */
      readonly readError: string;
    }
  | {
      readonly candidate: PolicyCandidate;
      /** The `.cedar` files do not match `policy-manifest.json`. */
      readonly manifestError?: string;
      /** Parsing and annotation checks, file by file (first error wins), ids unique across files. */
      readonly parsed: { readonly policies: readonly PolicyInfo[] } | { readonly error: string };
      /** Strict schema validation of the whole set; only when it parsed and holds policies. */
      readonly validationError?: string;
      /** Time spent reading and checking, in milliseconds. */
      readonly ms: number;
    };

/** Forbid reasons a policy may give (`@reason`). */
export const FORBID_REASONS: readonly string[] = DecisionReason.options.filter(
  (reason) =>
    reason !== 'ENTITLEMENTS_STALE' &&
    reason !== 'ACCOUNT_SUSPENDED' &&
    !(ENROLMENT_REASONS as readonly string[]).includes(reason),
);

let schemaText: string | undefined;
/** The schema's text, read once per thread. */
export function policySchemaText(): string {
  schemaText ??= readFileSync(SCHEMA_PATH, 'utf8');
  return schemaText;
}

/** Reads `dir` into a candidate and checks it completely; never throws. */
export function inspectPolicies(dir: string): PolicyInspection {
  const started = performance.now();
  let candidate: PolicyCandidate;
  try {
    candidate = readPolicyCandidate(dir);
  } catch (error) {
    return { readError: (error as Error).message };
  }
  let manifestError: string | undefined;
  try {
    checkAgainstManifest(candidate);
  } catch (error) {
    manifestError = (error as Error).message;
  }
  let parsed: { policies: PolicyInfo[] } | { error: string };
  let validationError: string | undefined;
  try {
    parsed = { policies: parsePolicies(candidate.files) };
  } catch (error) {
    parsed = { error: (error as Error).message };
  }
  if ('policies' in parsed && parsed.policies.length > 0) validationError = validatePolicies(parsed.policies);
  return {
    candidate,
    ...(manifestError !== undefined ? { manifestError } : {}),
    parsed,
    ...(validationError !== undefined ? { validationError } : {}),
    ms: performance.now() - started,
  };
}

/** Parses every file into policies; throws on the first error or on an id used twice. */
function parsePolicies(files: ReadonlyMap<string, string>): PolicyInfo[] {
  const policies = new Map<string, PolicyInfo>();
  for (const [file, text] of files) {
    for (const policy of parsePolicyFile(file, text)) {
      const existing = policies.get(policy.id);
      if (existing) throw new Error(`${file}: policy id "${policy.id}" is already used in ${existing.file}`);
      policies.set(policy.id, policy);
    }
  }
  return [...policies.values()];
}

/** Strict schema validation; the error text, or undefined when the set is valid. */
function validatePolicies(list: readonly PolicyInfo[]): string | undefined {
  const policies = new Map(list.map((policy) => [policy.id, policy]));
  const staticPolicies = Object.fromEntries(list.map((policy) => [policy.id, policy.text]));
  const validation = cedar.validate({
    schema: policySchemaText(),
    policies: { staticPolicies },
    validationSettings: { mode: 'strict' },
  });
  if (validation.type === 'failure') {
    return `validation failed: ${validation.errors.map((e) => e.message).join('; ')}`;
  }
  if (validation.validationErrors.length > 0) {
    const messages = validation.validationErrors.map((e) => {
      const file = policies.get(e.policyId)?.file ?? '?';
      return `${file}: ${e.error.message}${e.error.help ? ` (${e.error.help})` : ''}`;
    });
    return `schema validation failed: ${messages.join('; ')}`;
  }
  return undefined;
}

/** Splits one `.cedar` file into policies and checks their annotations. */
function parsePolicyFile(file: string, text: string): PolicyInfo[] {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') {
    throw new Error(`${file}: ${parts.errors.map((e) => describeCedarError(text, e)).join('; ')}`);
  }
  if (parts.policy_templates.length > 0) throw new Error(`${file}: policy templates are not supported`);
  return parts.policies.map((policyText, index) => {
    const json = cedar.policyToJson(policyText);
    if (json.type === 'failure') {
      throw new Error(`${file}: ${json.errors.map((e) => describeCedarError(policyText, e)).join('; ')}`);
    }
    const annotations: Record<string, string> = { ...(json.json.annotations ?? {}) };
    const where = `${file}, policy ${index + 1}`;
    const id = annotations.id;
    if (!id || !/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(id)) {
      throw new Error(`${where}: every policy needs an @id("...") of letters, digits, ".", "_", ":" or "-"`);
    }
    if (id === DEFAULT_DENY_POLICY) throw new Error(`${where}: @id "${DEFAULT_DENY_POLICY}" is reserved`);
    const effect = json.json.effect;
    if (effect === 'forbid') checkForbidAnnotations(`${where} ("${id}")`, annotations);
    return { id, effect, file, text: policyText, annotations };
  });
}

/**
 * The annotation rules of a forbid. Cheap and pure: the engine runs them again on what a
 * worker reports, so a wrong answer from a worker cannot slip a forbid without a reason in.
 */
export function checkForbidAnnotations(where: string, annotations: Readonly<Record<string, string>>): void {
  const reason = annotations.reason;
  if (!reason || !FORBID_REASONS.includes(reason)) {
    throw new Error(`${where}: a forbid needs @reason set to one of ${FORBID_REASONS.join(', ')}`);
  }
  if (annotations.since !== undefined && Number.isNaN(Date.parse(annotations.since))) {
    throw new Error(`${where}: @since must be an ISO 8601 date, got "${annotations.since}"`);
  }
  if (annotations.remediation !== undefined) {
    const url = URL.parse(annotations.remediation);
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw new Error(`${where}: @remediation must be an http(s) URL, got "${annotations.remediation}"`);
    }
  }
  if (annotations.visibility !== undefined && !['visible', 'hidden'].includes(annotations.visibility)) {
    throw new Error(`${where}: @visibility must be "visible" or "hidden"`);
  }
}

function describeCedarError(text: string, error: cedar.DetailedError): string {
  const start = error.sourceLocations?.[0]?.start;
  const label = error.sourceLocations?.[0]?.label;
  if (start === undefined) return error.message;
  const before = text.slice(0, start);
  const line = before.split('\n').length;
  const column = start - before.lastIndexOf('\n');
  return `line ${line}, column ${column}: ${error.message}${label ? ` (${label})` : ''}`;
}
