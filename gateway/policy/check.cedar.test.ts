import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * What the checks say when Cedar answers in ways the real policies never make it answer (issue 16):
 * a whole-set validation failure, a policy Cedar can split but not turn into JSON, an error
 * without a source location, a validation error naming a policy the set does not have.
 */
const cedarSays = vi.hoisted(() => ({
  validate: undefined as unknown,
  policyToJson: undefined as unknown,
  parts: undefined as unknown,
}));

vi.mock('@cedar-policy/cedar-wasm/nodejs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@cedar-policy/cedar-wasm/nodejs')>();
  return {
    ...actual,
    validate: (...args: Parameters<typeof actual.validate>) => cedarSays.validate ?? actual.validate(...args),
    policyToJson: (...args: Parameters<typeof actual.policyToJson>) =>
      cedarSays.policyToJson ?? actual.policyToJson(...args),
    policySetTextToParts: (...args: Parameters<typeof actual.policySetTextToParts>) =>
      cedarSays.parts ?? actual.policySetTextToParts(...args),
  };
});

const { inspectPolicies } = await import('./check');

let dir: string;
beforeEach(() => {
  Object.assign(cedarSays, { validate: undefined, policyToJson: undefined, parts: undefined });
  dir = mkdtempSync(join(tmpdir(), 'clearance-check-cedar-'));
  writeFileSync(join(dir, 'a.cedar'), '@id("p")\npermit (principal, action, resource);\n');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});
const inspect = () => {
  const inspection = inspectPolicies(dir);
  if ('readError' in inspection) throw new Error(inspection.readError);
  return inspection;
};
const error = (message: string, extra: Record<string, unknown> = {}) => ({
  message,
  help: null,
  code: null,
  url: null,
  severity: null,
  related: [],
  ...extra,
});

describe('the checks, when Cedar answers unusually', () => {
  it('reports a validation that failed as a whole, with every error', () => {
    cedarSays.validate = { type: 'failure', errors: [error('first'), error('second')], warnings: [] };
    expect(inspect().validationError).toBe('validation failed: first; second');
  });

  it('names "?" for a validation error of a policy the set does not have', () => {
    cedarSays.validate = {
      type: 'success',
      validationErrors: [{ policyId: 'ghost', error: error('odd') }],
      validationWarnings: [],
      otherWarnings: [],
    };
    expect(inspect().validationError).toBe('schema validation failed: ?: odd');
  });

  it('names the file, and the line and column within the policy, when a policy does not convert to JSON', () => {
    cedarSays.policyToJson = {
      type: 'failure',
      errors: [error('one', { sourceLocations: [{ label: null, start: 9, end: 10 }] }), error('two')],
    };
    expect('error' in inspect().parsed && inspect().parsed).toEqual({
      error: 'a.cedar: line 2, column 1: one; two',
    });
  });

  it('gives the bare message of an error without a source location, and joins several', () => {
    cedarSays.parts = { type: 'failure', errors: [error('first'), error('second', { sourceLocations: [] })] };
    expect(inspect().parsed).toEqual({ error: 'a.cedar: first; second' });
  });
});
