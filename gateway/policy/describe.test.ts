import { describe, expect, it } from 'vitest';
import type { CatalogModel } from '../catalog';
import { describeDecision } from './describe';
import type { DevicePolicyState, PolicyDecision } from './engine';

/**
 * What the user is told about a denied model comes from the determining policy's annotations
 * alone (issue 16): every field is checked exactly, and absent fields must be absent.
 */
const model = (overrides: Partial<CatalogModel> = {}): CatalogModel =>
  ({
    id: 'atlas-3',
    name: 'Atlas 3',
    visibility: 'visible',
    attributes: {
      exportControlled: false,
      suspended: false,
      requiredGroups: ['research', 'finance'],
      requiresHardware: false,
      requiresCompliantDevice: false,
    },
    ...overrides,
  }) as CatalogModel;

const device = (failedChecks: DevicePolicyState['failedChecks'] = []): DevicePolicyState => ({
  assurance: 'software',
  compliant: failedChecks.length === 0,
  failedChecks,
});

const deny = (overrides: Partial<PolicyDecision> = {}): PolicyDecision => ({
  effect: 'deny',
  reason: 'GROUP_MEMBERSHIP_REQUIRED',
  policy: 'groups-policy',
  annotations: {},
  determining: ['groups-policy'],
  errors: [],
  policyRevision: 1,
  cached: false,
  ...overrides,
});

describe('describeDecision', () => {
  it('says only "allowed" for an allow, whatever the annotations', () => {
    const outcome = describeDecision(
      deny({ effect: 'allow', annotations: { message: 'x', visibility: 'hidden' } }),
      model({ visibility: 'hidden-when-denied' }),
      device(),
    );
    expect(outcome).toStrictEqual({ status: 'allowed' });
  });

  it('hides a denied model the catalog hides when denied, with no reason text', () => {
    expect(
      describeDecision(
        deny({ annotations: { message: 'm', title: 't' } }),
        model({ visibility: 'hidden-when-denied' }),
        device(),
      ),
    ).toStrictEqual({ status: 'hidden' });
  });

  it('hides a denied model whose determining forbid says @visibility("hidden"), and only then', () => {
    expect(describeDecision(deny({ annotations: { visibility: 'hidden' } }), model(), device())).toStrictEqual({
      status: 'hidden',
    });
    expect(describeDecision(deny({ annotations: { visibility: 'visible' } }), model(), device()).status).toBe('denied');
  });

  it('denies with NOT_ENTITLED and its own sentence when the decision names no reason', () => {
    expect(describeDecision(deny({ reason: undefined, policy: undefined }), model(), device())).toStrictEqual({
      status: 'denied',
      reason: 'NOT_ENTITLED',
      title: 'Not entitled',
      message: 'No policy grants you access to Atlas 3.',
    });
    expect(describeDecision(deny({ reason: 'NOT_ENTITLED', policy: 'default-deny' }), model(), device())).toStrictEqual(
      {
        status: 'denied',
        reason: 'NOT_ENTITLED',
        title: 'Not entitled',
        message: 'No policy grants you access to Atlas 3.',
        policy: 'default-deny',
      },
    );
  });

  it('names the reason title in the sentence of a forbid without @message', () => {
    expect(describeDecision(deny(), model(), device())).toStrictEqual({
      status: 'denied',
      reason: 'GROUP_MEMBERSHIP_REQUIRED',
      title: 'Group membership required',
      message: 'Atlas 3 is not available to you (Group membership required).',
      policy: 'groups-policy',
    });
  });

  it('fills every placeholder of @message, each as often as it appears', () => {
    const outcome = describeDecision(
      deny({
        annotations: {
          message:
            '{model}/{model}: checks {failedChecks}; groups {requiredGroups}; again {failedChecks} {requiredGroups}',
        },
      }),
      model(),
      device(['firewall', 'disk-encryption']),
    );
    expect(outcome).toMatchObject({
      message:
        'Atlas 3/Atlas 3: checks firewall, disk-encryption; groups research, finance; again firewall, disk-encryption research, finance',
    });
  });

  it('says "none reported" when no failing check is known', () => {
    const outcome = describeDecision(deny({ annotations: { message: 'Failing: {failedChecks}.' } }), model(), device());
    expect(outcome).toMatchObject({ message: 'Failing: none reported.' });
  });

  it('takes title, since, remediation with its label and contact from the annotations', () => {
    const outcome = describeDecision(
      deny({
        reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
        policy: 'ec',
        annotations: {
          title: 'Directive EC',
          message: 'No.',
          since: '2026-06-18T00:00:00Z',
          remediation: 'https://access.example/verify',
          remediation_label: 'Verify',
          contact: 'export@example.com',
        },
      }),
      model({ since: '2025-01-01T00:00:00Z' }),
      device(),
    );
    expect(outcome).toStrictEqual({
      status: 'denied',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      title: 'Directive EC',
      message: 'No.',
      policy: 'ec',
      since: '2026-06-18T00:00:00Z',
      remediation: { label: 'Verify', url: 'https://access.example/verify' },
      contact: 'export@example.com',
    });
  });

  it("falls back to the catalog's since and the default remediation label", () => {
    const outcome = describeDecision(
      deny({ annotations: { remediation: 'https://access.example/groups' } }),
      model({ since: '2025-01-01T00:00:00Z' }),
      device(),
    );
    expect(outcome).toStrictEqual({
      status: 'denied',
      reason: 'GROUP_MEMBERSHIP_REQUIRED',
      title: 'Group membership required',
      message: 'Atlas 3 is not available to you (Group membership required).',
      policy: 'groups-policy',
      since: '2025-01-01T00:00:00Z',
      remediation: { label: 'How to get access', url: 'https://access.example/groups' },
    });
  });
});
