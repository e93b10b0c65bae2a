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

describe('formatTime', () => {
  it('shows a time to the minute in UTC', () => {
    expect(formatTime(Date.UTC(2026, 10, 26, 14, 5, 59, 999))).toBe('2026-11-26 14:05 UTC');
  });
});

describe('the stale model, field by field', () => {
  const haikuSentence =
    'so it cannot confirm that you may use Haiku 4. ' +
    'Check your network or VPN connection; Clearance reconnects by itself and access returns as soon as the gateway answers.';
  const rich = EntitlementDocument.parse(
    documentClaims(
      { sub: 'u', jkt: 'j', ver: 7, nowSeconds: NOW / 1000 },
      {
        models: [
          {
            id: 'haiku-4',
            name: 'Haiku 4',
            description: 'Fast and small',
            demo: true,
            status: 'allowed',
            policy: 'should-not-be-copied',
            remediation: { label: 'Ask', url: 'https://access.lab.example/ask' },
          },
          {
            id: 'mythos-5',
            name: 'Mythos 5',
            status: 'denied',
            reason: 'MODEL_SUSPENDED',
            title: 'Model suspended',
            message: 'Mythos 5 is suspended.',
            policy: 'p-suspend',
          },
          { id: 'internal-eval', name: 'Internal Eval', status: 'hidden' },
        ],
      },
    ),
  );
  const EXP = rich.exp * 1000;

  it('replaces a model past exp with exactly the stale facts, keeping its name, description and demo flag', () => {
    const view = buildEntitlementsView({
      document: rich,
      now: EXP,
      lastRefresh: NOW,
      live: 'offline',
      supportContact: 'it-help@lab.example',
      lastError: 'Could not reach the gateway: down.',
    });
    expect(view).toStrictEqual({
      status: 'stale',
      live: 'offline',
      ver: 7,
      expiresAt: new Date(EXP).toISOString(),
      supportContact: 'it-help@lab.example',
      lastRefresh: new Date(NOW).toISOString(),
      lastError: 'Could not reach the gateway: down.',
      models: [
        {
          id: 'haiku-4',
          name: 'Haiku 4',
          description: 'Fast and small',
          demo: true,
          status: 'denied',
          reason: 'ENTITLEMENTS_STALE',
          title: 'Access could not be confirmed',
          message:
            `Clearance could not reach the gateway since ${formatTime(NOW)}, ${haikuSentence}` +
            ' If this continues, contact it-help@lab.example.',
          since: new Date(NOW).toISOString(),
          contact: 'it-help@lab.example',
        },
        {
          id: 'mythos-5',
          name: 'Mythos 5',
          status: 'denied',
          reason: 'ENTITLEMENTS_STALE',
          title: 'Access could not be confirmed',
          message: expect.stringContaining('so it cannot confirm that you may use Mythos 5.'),
          since: new Date(NOW).toISOString(),
          contact: 'it-help@lab.example',
        },
        { id: 'internal-eval', name: 'Internal Eval', status: 'hidden' },
      ],
    });
  });

  it('says "since it started" without a last refresh, names the other cause while not offline, and names no contact without one', () => {
    const view = buildEntitlementsView({ document: rich, now: EXP + 1, live: 'polling' });
    expect(view).toStrictEqual({
      status: 'stale',
      live: 'polling',
      ver: 7,
      expiresAt: new Date(EXP).toISOString(),
      models: [
        {
          id: 'haiku-4',
          name: 'Haiku 4',
          description: 'Fast and small',
          demo: true,
          status: 'denied',
          reason: 'ENTITLEMENTS_STALE',
          title: 'Access could not be confirmed',
          message: `Clearance has not been able to confirm your access with the gateway since it started, ${haikuSentence}`,
        },
        {
          id: 'mythos-5',
          name: 'Mythos 5',
          status: 'denied',
          reason: 'ENTITLEMENTS_STALE',
          title: 'Access could not be confirmed',
          message: expect.stringContaining('since it started, so it cannot confirm that you may use Mythos 5.'),
        },
        { id: 'internal-eval', name: 'Internal Eval', status: 'hidden' },
      ],
    });
  });

  it('is current one millisecond before exp', () => {
    const view = buildEntitlementsView({ document: rich, now: EXP - 1, live: 'connected' });
    expect(view).toStrictEqual({
      status: 'current',
      live: 'connected',
      ver: 7,
      expiresAt: new Date(EXP).toISOString(),
      models: rich.models,
    });
  });

  it('treats an unreachable gateway as offline only while the stream is offline too', () => {
    const polling = buildEntitlementsView({ document: rich, now: NOW, live: 'polling', unreachable: true });
    expect(polling.models).toStrictEqual(rich.models);
    const offline = buildEntitlementsView({ document: rich, now: NOW, live: 'offline', unreachable: false });
    expect(offline.models).toStrictEqual(rich.models);
  });

  it('shows no document, and none of its fields, when there is none', () => {
    expect(buildEntitlementsView({ now: NOW, live: 'offline' })).toStrictEqual({
      status: 'none',
      models: [],
      live: 'offline',
    });
    expect(
      buildEntitlementsView({ now: NOW, live: 'polling', supportContact: 'it@x', lastRefresh: NOW, lastError: 'e' }),
    ).toStrictEqual({
      status: 'none',
      models: [],
      live: 'polling',
      supportContact: 'it@x',
      lastRefresh: new Date(NOW).toISOString(),
      lastError: 'e',
    });
  });
});

describe('checkModelAccess, answer by answer', () => {
  it('says exactly why with no document yet', () => {
    expect(checkModelAccess(buildEntitlementsView({ now: NOW, live: 'offline' }), 'haiku-4')).toStrictEqual({
      allowed: false,
      reason: 'ENTITLEMENTS_STALE',
      title: 'Access could not be confirmed',
      message:
        'Clearance has not received your entitlements from the gateway yet, so it cannot confirm which models you may use. ' +
        'Check your connection and try again in a moment.',
    });
  });

  it('names an unknown model', () => {
    const current = buildEntitlementsView({ document, now: NOW, live: 'connected' });
    expect(checkModelAccess(current, 'nope')).toStrictEqual({
      allowed: false,
      reason: 'NOT_ENTITLED',
      title: 'Not entitled',
      message: '"nope" is not among the models your entitlements list.',
    });
  });

  it('refuses a model listed as allowed in a document that is not current', () => {
    const view = {
      status: 'stale',
      live: 'offline',
      models: [{ id: 'haiku-4', name: 'Haiku 4', status: 'allowed' }],
    } as const satisfies Parameters<typeof checkModelAccess>[0];
    expect(checkModelAccess(view, 'haiku-4')).toStrictEqual({
      allowed: false,
      reason: 'NOT_ENTITLED',
      title: 'Not entitled',
      message: 'Haiku 4 is not available to you.',
    });
  });

  it('gives a denied model its own reason, title, message and rule, or the title of its reason', () => {
    const current = buildEntitlementsView({ document, now: NOW, live: 'connected' });
    expect(checkModelAccess(current, 'mythos-5')).toStrictEqual({
      allowed: false,
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      title: 'Restricted by export-control directive',
      message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
      policy: 'ec-2026-06-us-persons',
    });
    expect(checkModelAccess(current, 'internal-eval')).toStrictEqual({
      allowed: false,
      reason: 'NOT_ENTITLED',
      title: 'Not entitled',
      message: 'Internal Eval is not available to you.',
    });
    const suspended = {
      status: 'current',
      live: 'connected',
      models: [{ id: 'm', name: 'M', status: 'denied', reason: 'MODEL_SUSPENDED' }],
    } as const satisfies Parameters<typeof checkModelAccess>[0];
    expect(checkModelAccess(suspended, 'm')).toStrictEqual({
      allowed: false,
      reason: 'MODEL_SUSPENDED',
      title: 'Model suspended',
      message: 'M is not available to you.',
    });
  });
});
