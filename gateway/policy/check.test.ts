import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildManifest, POLICY_MANIFEST_FILE } from './candidate';
import {
  checkForbidAnnotations,
  DEFAULT_DENY_POLICY,
  FORBID_REASONS,
  inspectPolicies,
  policySchemaText,
  SCHEMA_PATH,
  type PolicyInspection,
} from './check';

/**
 * The checks of a reload candidate (issue 16), run here on the test's own thread (the gateway runs
 * them in a worker): every refusal by its exact text, and what a valid set yields.
 */
let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'clearance-check-'));
  dir = join(root, 'policies');
  mkdirSync(dir);
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
type Inspected = Exclude<PolicyInspection, { readonly readError: string }>;
const inspect = (): Inspected => {
  const inspection = inspectPolicies(dir);
  if ('readError' in inspection) throw new Error(`unexpected read error: ${inspection.readError}`);
  return inspection;
};
const parseError = () => {
  const { parsed } = inspect();
  return 'error' in parsed ? parsed.error : undefined;
};

const PERMIT = '@id("p")\npermit (principal, action == Clearance::Action::"invoke", resource);\n';
const forbid = (annotations: string) =>
  `@id("f")\n${annotations}\nforbid (principal, action == Clearance::Action::"invoke", resource) when { resource.suspended };\n`;

describe('the constants', () => {
  it('reserve default-deny and read the schema beside the code, once', () => {
    expect(DEFAULT_DENY_POLICY).toBe('default-deny');
    expect(SCHEMA_PATH.endsWith('/gateway/policy/clearance.cedarschema')).toBe(true);
    expect(policySchemaText()).toBe(readFileSync(SCHEMA_PATH, 'utf8'));
    expect(policySchemaText()).toBe(policySchemaText());
  });

  it('let a forbid give every reason but the stale, suspended-account and enrolment ones', () => {
    expect(FORBID_REASONS).toEqual([
      'EXPORT_CONTROL_US_PERSON_REQUIRED',
      'IDENTITY_VERIFICATION_PENDING',
      'DEVICE_NOT_COMPLIANT',
      'DEVICE_ASSURANCE_TOO_LOW',
      'GROUP_MEMBERSHIP_REQUIRED',
      'MODEL_SUSPENDED',
      'NOT_ENTITLED',
    ]);
  });
});

describe('inspectPolicies', () => {
  it('reports a folder it cannot read as a read error, and nothing else', () => {
    const missing = join(root, 'missing');
    const inspection = inspectPolicies(missing);
    expect(Object.keys(inspection)).toEqual(['readError']);
    expect(
      'readError' in inspection && inspection.readError.startsWith(`cannot read policies folder ${missing}: `),
    ).toBe(true);
  });

  it('yields the policies of a valid set, with no manifest or validation error, and the time it took', () => {
    write('a.cedar', PERMIT);
    write('b.cedar', forbid('@reason("MODEL_SUSPENDED")\n@title("Suspended")'));
    const before = performance.now();
    const inspection = inspect();
    const after = performance.now();
    expect(Object.keys(inspection).sort()).toEqual(['candidate', 'ms', 'parsed']);
    expect(inspection.parsed).toStrictEqual({
      policies: [
        {
          id: 'p',
          effect: 'permit',
          file: 'a.cedar',
          text: PERMIT.trimEnd(),
          annotations: { id: 'p' },
        },
        {
          id: 'f',
          effect: 'forbid',
          file: 'b.cedar',
          text: forbid('@reason("MODEL_SUSPENDED")\n@title("Suspended")').trimEnd(),
          annotations: { id: 'f', reason: 'MODEL_SUSPENDED', title: 'Suspended' },
        },
      ],
    });
    expect(inspection.ms).toBeGreaterThanOrEqual(0);
    expect(inspection.ms).toBeLessThanOrEqual(after - before);
  });

  it('keeps a manifest mismatch apart from the parse, which still runs', () => {
    write('a.cedar', PERMIT);
    writeFileSync(
      join(dir, POLICY_MANIFEST_FILE),
      JSON.stringify(buildManifest(new Map([['a.cedar', 'other']]), 'it')),
    );
    const inspection = inspect();
    expect(inspection.manifestError).toBe(
      'the folder does not match policy-manifest.json (a.cedar differs from its published hash); publish with "npm run policy:publish" or restore the files',
    );
    expect('policies' in inspection.parsed && inspection.parsed.policies.map((p) => p.id)).toEqual(['p']);
  });

  it('reports an unreadable manifest as a read error', () => {
    write('a.cedar', PERMIT);
    write(POLICY_MANIFEST_FILE, 'not json');
    expect(inspectPolicies(dir)).toStrictEqual({
      readError: 'policy-manifest.json is not valid JSON (a publish may be in progress)',
    });
  });

  it('yields no policies and runs no validation for files without policies', () => {
    write('a.cedar', '// nothing yet\n');
    const inspection = inspect();
    expect(inspection.parsed).toStrictEqual({ policies: [] });
    expect('validationError' in inspection).toBe(false);
  });

  it('names the file, line and column of a syntax error, with its label', () => {
    write('zz.cedar', '@id("bad")\nforbid (principal, action, resource) when { resource.suspended &&  };\n');
    expect(parseError()).toBe(
      'zz.cedar: line 2, column 68: unexpected token `}` (expected `!`, `(`, `-`, `[`, `{`, `false`, identifier, `if`, number, `?principal`, `?resource`, string literal, or `true`)',
    );
  });

  it('counts the column from the start of the text on the first line, and gives no label when Cedar has none', () => {
    write('t.cedar', 'permit (principal, action, resource)');
    expect(parseError()).toBe('t.cedar: line 1, column 37: unexpected end of input (expected `;` or identifier)');
    write('t.cedar', '@id("a")\n@id("b")\npermit (principal, action, resource);\n');
    expect(parseError()).toBe('t.cedar: line 2, column 1: duplicate annotation: @id');
    write('t.cedar', '@id("a")\npermit (principal, action, resource) when { "\\q" };\n');
    expect(parseError()).toBe('t.cedar: line 2, column 45: the input `\\q` is not a valid escape');
  });

  it('refuses policy templates', () => {
    write('t.cedar', '@id("t")\npermit (principal == ?principal, action, resource);\n');
    expect(parseError()).toBe('t.cedar: policy templates are not supported');
  });

  it('stops at the first file with an error, in name order', () => {
    write('a.cedar', '@id("a")\npermit (principal, action, resource) when { x };\n');
    write('b.cedar', 'nonsense');
    expect(parseError()).toBe('a.cedar: line 2, column 45: invalid variable: x');
  });

  it('refuses an id used twice, within a file or across files', () => {
    write('a.cedar', PERMIT);
    write('b.cedar', PERMIT);
    expect(parseError()).toBe('b.cedar: policy id "p" is already used in a.cedar');
    rmSync(join(dir, 'b.cedar'));
    write('a.cedar', `${PERMIT}${PERMIT}`);
    expect(parseError()).toBe('a.cedar: policy id "p" is already used in a.cedar');
  });

  it.each([
    ['no @id', 'permit (principal, action, resource);'],
    ['an empty @id', '@id("")\npermit (principal, action, resource);'],
    ['an @id starting with a dot', '@id(".p")\npermit (principal, action, resource);'],
    ['an @id starting with a dash', '@id("-p")\npermit (principal, action, resource);'],
    ['an @id with a space', '@id("p q")\npermit (principal, action, resource);'],
    ['an @id ending in a slash', '@id("p/")\npermit (principal, action, resource);'],
  ])('refuses a policy with %s, naming its place', (_what, text) => {
    write('a.cedar', `${PERMIT}\n${text}\n`);
    expect(parseError()).toBe(
      'a.cedar, policy 2: every policy needs an @id("...") of letters, digits, ".", "_", ":" or "-"',
    );
  });

  it('accepts ids of letters, digits, ".", "_", ":" and "-"', () => {
    write(
      'a.cedar',
      '@id("Az09._:-x")\npermit (principal, action, resource);\n@id("9")\npermit (principal, action, resource);\n',
    );
    const { parsed } = inspect();
    expect('policies' in parsed && parsed.policies.map((p) => p.id)).toEqual(['Az09._:-x', '9']);
  });

  it('reserves the id default-deny', () => {
    write('a.cedar', '@id("default-deny")\npermit (principal, action, resource);\n');
    expect(parseError()).toBe('a.cedar, policy 1: @id "default-deny" is reserved');
  });

  it('checks the annotations of a forbid, naming its file, place and id', () => {
    write('a.cedar', `${PERMIT}\n${forbid('@title("no reason")')}`);
    expect(parseError()).toBe(
      `a.cedar, policy 2 ("f"): a forbid needs @reason set to one of ${FORBID_REASONS.join(', ')}`,
    );
  });

  it('leaves the annotations of a permit alone', () => {
    write('a.cedar', '@id("p")\n@reason("BECAUSE")\n@since("never")\npermit (principal, action, resource);\n');
    expect(parseError()).toBeUndefined();
  });

  it('names every schema error with its file and Cedar help, when Cedar gives help', () => {
    write(
      'a.cedar',
      '@id("a")\npermit (principal, action, resource) when { 1 + "a" };\n@id("b")\npermit (principal, action, resource) when { principal.nope };\n',
    );
    write('b.cedar', PERMIT);
    const inspection = inspect();
    expect(inspection.validationError).toBe(
      'schema validation failed: a.cedar: for policy `a`, unexpected type: expected Long but saw String (Cedar does not support string concatenation); a.cedar: for policy `a`, unexpected type: expected Bool but saw Long; a.cedar: for policy `b`, attribute `nope` on entity type `Clearance::User` not found (did you mean `groups`?)',
    );
  });
});

describe('checkForbidAnnotations', () => {
  const refusal = (annotations: Record<string, string>) => {
    try {
      checkForbidAnnotations('x.cedar ("f")', annotations);
    } catch (error) {
      return (error as Error).message;
    }
    return undefined;
  };
  const ok = { reason: 'MODEL_SUSPENDED' };

  it.each(FORBID_REASONS.map((reason) => [reason]))('accepts @reason %s', (reason) => {
    expect(refusal({ reason })).toBeUndefined();
  });

  it.each([
    ['no @reason', {}],
    ['an empty @reason', { reason: '' }],
    ['an unknown @reason', { reason: 'BECAUSE' }],
    ['ACCOUNT_SUSPENDED (the user registry decides it)', { reason: 'ACCOUNT_SUSPENDED' }],
    ['ENTITLEMENTS_STALE (only the client sets it)', { reason: 'ENTITLEMENTS_STALE' }],
    ['DEVICE_ENROLMENT_PENDING (the enrolment policy gives it)', { reason: 'DEVICE_ENROLMENT_PENDING' }],
    ['DEVICE_CERTIFICATE_REQUIRED', { reason: 'DEVICE_CERTIFICATE_REQUIRED' }],
    ['DEVICE_ATTESTATION_FAILED', { reason: 'DEVICE_ATTESTATION_FAILED' }],
  ])('refuses %s', (_what, annotations) => {
    expect(refusal(annotations)).toBe(
      'x.cedar ("f"): a forbid needs @reason set to one of EXPORT_CONTROL_US_PERSON_REQUIRED, IDENTITY_VERIFICATION_PENDING, DEVICE_NOT_COMPLIANT, DEVICE_ASSURANCE_TOO_LOW, GROUP_MEMBERSHIP_REQUIRED, MODEL_SUSPENDED, NOT_ENTITLED',
    );
  });

  it('accepts an ISO 8601 @since and refuses anything else', () => {
    expect(refusal({ ...ok, since: '2026-06-18T00:00:00Z' })).toBeUndefined();
    expect(refusal({ ...ok, since: 'soon' })).toBe('x.cedar ("f"): @since must be an ISO 8601 date, got "soon"');
  });

  it('accepts an https or http @remediation and refuses other schemes and non-URLs', () => {
    expect(refusal({ ...ok, remediation: 'https://it.example/fix' })).toBeUndefined();
    expect(refusal({ ...ok, remediation: 'http://it.example/fix' })).toBeUndefined();
    expect(refusal({ ...ok, remediation: 'javascript:alert(1)' })).toBe(
      'x.cedar ("f"): @remediation must be an http(s) URL, got "javascript:alert(1)"',
    );
    expect(refusal({ ...ok, remediation: 'not a url' })).toBe(
      'x.cedar ("f"): @remediation must be an http(s) URL, got "not a url"',
    );
  });

  it('accepts @visibility visible or hidden only', () => {
    expect(refusal({ ...ok, visibility: 'visible' })).toBeUndefined();
    expect(refusal({ ...ok, visibility: 'hidden' })).toBeUndefined();
    expect(refusal({ ...ok, visibility: 'secret' })).toBe('x.cedar ("f"): @visibility must be "visible" or "hidden"');
    expect(refusal({ ...ok, visibility: '' })).toBe('x.cedar ("f"): @visibility must be "visible" or "hidden"');
  });
});
