import type { ModelEntitlement } from '../../shared/entitlements';
import type { AppInfo, Conversation, DeviceStatus, EntitlementsView, SessionState } from '../../shared/ipc';

/** App facts as the harness reports them. */
export const appInfoFixture: AppInfo = {
  name: 'Clearance',
  version: '0.1.0',
  platform: 'linux',
  shell: 'harness',
  gatewayUrl: 'https://gateway.example.test',
};

/** A researcher who is signed in (no tokens: the renderer never sees any). */
export const signedInSession: SessionState = {
  status: 'signed-in',
  tokenPersistence: 'encrypted',
  account: { name: 'Ada Lovelace', username: 'ada@lab.example', tenantId: 'lab-tenant', homeAccountId: 'ada.lab' },
};

/** Nobody signed in yet. */
export const signedOutSession: SessionState = { status: 'signed-out', tokenPersistence: 'encrypted' };

/** The export-controlled model, denied by directive EC-2026-06. */
export const mythosDenied: ModelEntitlement = {
  id: 'mythos-5',
  name: 'Mythos 5',
  status: 'denied',
  reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
  title: 'Restricted by export-control directive',
  message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
  policy: 'ec-2026-06-us-persons',
  since: '2026-06-18T00:00:00Z',
  remediation: { label: 'Request US-person verification', url: 'https://access.lab.example/verify' },
  contact: 'export-compliance@lab.example',
};

/** Models in the order a typical document lists them. */
export const modelsFixture: readonly ModelEntitlement[] = [
  { id: 'haiku-4', name: 'Haiku 4', status: 'allowed', description: 'Fast general model' },
  mythosDenied,
  { id: 'echo-demo', name: 'Echo', status: 'allowed', demo: true },
  {
    id: 'opus-lab',
    name: 'Opus Lab',
    status: 'denied',
    reason: 'DEVICE_ASSURANCE_TOO_LOW',
    policy: 'hardware-key-required',
    message: 'Opus Lab needs a device whose key is held in hardware.',
  },
  { id: 'secret-x', name: 'Secret X', status: 'hidden' },
];

/** A current, live entitlements view. */
export const entitlementsFixture: EntitlementsView = {
  status: 'current',
  models: [...modelsFixture],
  ver: 4182,
  expiresAt: '2026-11-27T10:10:00Z',
  lastRefresh: '2026-11-27T10:00:00Z',
  live: 'connected',
  supportContact: 'it-help@lab.example',
};

/** A compliant device. */
export const passingDevice: DeviceStatus = {
  thumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
  assurance: 'software',
  gate: 'pass',
  requiredChecks: ['disk-encryption', 'os-version'],
  checkedAt: '2026-11-27T09:59:00Z',
  checks: [
    { id: 'os-version', status: 'pass', detail: 'Debian 13', remediation: '' },
    { id: 'disk-encryption', status: 'pass', detail: 'LUKS on /', remediation: '' },
  ],
};

/** A device that fails a required check and cannot tell another. */
export const blockedDevice: DeviceStatus = {
  thumbprint: 'Q1w2E3r4T5y6U7i8O9p0AsDfGhJkLzXcVbNm1234567',
  assurance: 'software',
  gate: 'blocked',
  requiredChecks: ['disk-encryption', 'screen-lock'],
  checkedAt: '2026-11-27T09:59:00Z',
  checks: [
    { id: 'os-version', status: 'pass', detail: 'Debian 13 (trixie)', remediation: '' },
    {
      id: 'disk-encryption',
      status: 'fail',
      detail: 'The system disk is not encrypted.',
      remediation: 'Enable full-disk encryption (LUKS) or ask IT to re-image this laptop.',
    },
    {
      id: 'screen-lock',
      status: 'unknown',
      detail: 'The screen-lock setting could not be read.',
      remediation: 'Turn on automatic screen lock after 5 minutes in Settings → Privacy.',
    },
    { id: 'firewall', status: 'pass', detail: 'nftables active', remediation: '' },
  ],
};

/** A short conversation with Haiku 4. */
export function conversationFixture(overrides: Partial<Conversation> = {}): Conversation {
  return {
    id: 'c1',
    title: 'Tokenizer question',
    model: 'haiku-4',
    createdAt: '2026-11-27T09:00:00Z',
    updatedAt: '2026-11-27T09:01:00Z',
    messages: [
      { id: 'm1', role: 'user', content: 'What is a tokenizer?', createdAt: '2026-11-27T09:00:00Z', model: 'haiku-4' },
      {
        id: 'm2',
        role: 'assistant',
        content: 'A tokenizer splits text into **tokens**.\n\nIt is the first step.',
        createdAt: '2026-11-27T09:00:02Z',
        model: 'haiku-4',
        status: 'complete',
      },
    ],
    ...overrides,
  };
}
