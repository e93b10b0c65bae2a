import { describe, expect, it } from 'vitest';
import { EntitlementDocument } from '../../shared/entitlements';
import { documentClaims } from './test-gateway';
import { buildEntitlementsView, checkModelAccess, formatTime } from './view';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const document = EntitlementDocument.parse(documentClaims({ sub: 'u', jkt: 'j', ver: 3, nowSeconds: NOW / 1000 }));
const EXPIRED = document.exp * 1000;

describe('buildEntitlementsView', () => {
  it('shows a current document as it is', () => {
    const view = buildEntitlementsView({ document, now: NOW, lastRefresh: NOW, live: 'connected' });
    expect(view.status).toBe('current');
    expect(view.models).toEqual(document.models);
    expect(view.ver).toBe(3);
    expect(view.expiresAt).toBe(new Date(EXPIRED).toISOString());
  });

  it('denies every visible model with ENTITLEMENTS_STALE from exp on, keeping hidden ones hidden', () => {
    const view = buildEntitlementsView({
      document,
      now: EXPIRED,
      lastRefresh: NOW,
      live: 'offline',
      supportContact: 'it-help@lab.example',
    });
    expect(view.status).toBe('stale');
    const visible = view.models.filter((model) => model.status !== 'hidden');
    expect(visible).toHaveLength(2);
    for (const model of visible) {
      expect(model).toMatchObject({
        status: 'denied',
        reason: 'ENTITLEMENTS_STALE',
        title: 'Access could not be confirmed',
      });
      expect(model.message).toContain(`could not reach the gateway since ${formatTime(NOW)}`);
      expect(model.message).toContain('it-help@lab.example');
      expect(model.remediation).toBeUndefined();
    }
    expect(view.models.find((model) => model.id === 'internal-eval')?.status).toBe('hidden');
  });
});

describe('buildEntitlementsView while the gateway is unreachable', () => {
  it('shows no model as available before exp, keeping the document current, the rules of denied models and hidden models hidden', () => {
    const view = buildEntitlementsView({ document, now: NOW, lastRefresh: NOW, live: 'offline', unreachable: true });
    expect(view.status).toBe('current');
    expect(view.models.filter((model) => model.status === 'allowed')).toEqual([]);
    expect(view.models.find((model) => model.id === 'haiku-4')).toMatchObject({
      status: 'denied',
      reason: 'ENTITLEMENTS_STALE',
    });
    expect(view.models.find((model) => model.id === 'internal-eval')?.status).toBe('hidden');
    // A model a rule denies keeps its rule: offline does not hide the real reason.
    expect(view.models.find((model) => model.id === 'mythos-5')).toEqual(
      document.models.find((model) => model.id === 'mythos-5'),
    );
    expect(checkModelAccess(view, 'haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });
  });

  it('keeps the document as it is before the first attempt has failed', () => {
    const view = buildEntitlementsView({ document, now: NOW, lastRefresh: NOW, live: 'offline' });
    expect(view.models).toEqual(document.models);
  });
});

describe('checkModelAccess', () => {
  const current = buildEntitlementsView({ document, now: NOW, lastRefresh: NOW, live: 'connected' });

  it('allows a model the current document allows', () => {
    expect(checkModelAccess(current, 'haiku-4')).toEqual({ allowed: true });
  });

  it('refuses a denied model with the rule that denied it', () => {
    expect(checkModelAccess(current, 'mythos-5')).toMatchObject({
      allowed: false,
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      title: 'Restricted by export-control directive',
      policy: 'ec-2026-06-us-persons',
    });
  });

  it('refuses hidden and unknown models as not entitled', () => {
    expect(checkModelAccess(current, 'internal-eval')).toMatchObject({ allowed: false, reason: 'NOT_ENTITLED' });
    expect(checkModelAccess(current, 'nope')).toMatchObject({ allowed: false, reason: 'NOT_ENTITLED' });
  });

  it('refuses everything once stale, or with no document', () => {
    const stale = buildEntitlementsView({ document, now: EXPIRED + 1, lastRefresh: NOW, live: 'offline' });
    expect(checkModelAccess(stale, 'haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });
    const none = buildEntitlementsView({ now: NOW, live: 'offline' });
    expect(checkModelAccess(none, 'haiku-4')).toMatchObject({ allowed: false, reason: 'ENTITLEMENTS_STALE' });
  });
});
