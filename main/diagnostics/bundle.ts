import type { DiscoveryDocument } from '../../shared/discovery';
import type { DeviceStatus, EntitlementsView, SessionState } from '../../shared/ipc';
import type { ManagedPolicyView } from '../../shared/managedPolicy';
import { isSecretName, REDACTED, redactText, redactValue } from './redact';

/** Everything the bundle is made from, as the composition root gathers it. */
export interface DiagnosticsInput {
  readonly app: {
    readonly version: string;
    readonly shell: 'electron' | 'harness';
    readonly packaged: boolean;
  };
  readonly platform: { readonly os: NodeJS.Platform; readonly arch: string; readonly release: string };
  readonly gatewayUrl: { readonly value: string; readonly source: string };
  readonly managed: ManagedPolicyView;
  readonly discovery: DiscoveryDocument | undefined;
  readonly device: DeviceStatus;
  readonly entitlements: EntitlementsView;
  readonly session: SessionState;
  readonly update: unknown;
  readonly log: readonly string[];
  readonly now: Date;
}

/**
 * The diagnostics bundle IT reads when someone is stuck: one JSON document, redacted.
 *
 * It holds the entitlement view's claims (model ids, statuses, reasons, version, expiry), never the
 * signed document; the account's name but never a token; no conversation is read at all.
 */
export function buildDiagnostics(input: DiagnosticsInput): { fileName: string; content: string } {
  const bundle = {
    kind: 'clearance-diagnostics',
    formatVersion: 1,
    createdAt: input.now.toISOString(),
    app: input.app,
    platform: input.platform,
    configuration: {
      gatewayUrl: input.gatewayUrl,
      managed: {
        state: input.managed.state,
        entries: input.managed.entries.map((entry) => ({
          setting: entry.key,
          value: isSecretName(entry.key) ? REDACTED : entry.value,
          source: `${entry.source} (${entry.level}) ${entry.location}`,
          status: entry.status,
          ...(entry.reason ? { reason: entry.reason } : {}),
        })),
        problems: input.managed.problems,
        locked: input.managed.locked,
      },
    },
    discovery: input.discovery ?? null,
    deviceChecks: input.device,
    entitlements: {
      status: input.entitlements.status,
      ver: input.entitlements.ver,
      expiresAt: input.entitlements.expiresAt,
      lastRefresh: input.entitlements.lastRefresh,
      live: input.entitlements.live,
      lastError: input.entitlements.lastError,
      models: input.entitlements.models.map((model) => ({
        id: model.id,
        status: model.status,
        ...(model.reason ? { reason: model.reason } : {}),
        ...(model.policy ? { policy: model.policy } : {}),
      })),
    },
    session: {
      status: input.session.status,
      tokenPersistence: input.session.tokenPersistence,
      account: input.session.account
        ? { name: input.session.account.name, username: input.session.account.username }
        : undefined,
      lastError: input.session.lastError,
    },
    update: input.update,
    recentLog: input.log.map(redactText),
  };
  const stamp = input.now
    .toISOString()
    .replaceAll(':', '-')
    .replace(/\.\d+Z$/, 'Z');
  return {
    fileName: `clearance-diagnostics-${stamp}.json`,
    content: `${JSON.stringify(redactValue(bundle), null, 2)}\n`,
  };
}
