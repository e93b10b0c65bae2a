import type { IpcEventName, IpcEventPayload } from '../shared/ipc';
import type { ManagedConfigRead } from './config/managed';
import { Emitter, type Disposable } from './events';
import { isAllowedExternalUrl } from './external/allowList';
import { IpcFailure, type IpcHandlers } from './ipc/dispatch';
import type { Adapters } from './platform';

/** How the shell starts the app: the same for Electron and the browser harness but for `shell`. */
export interface ClearanceConfig {
  readonly gatewayUrl: string;
  readonly appVersion: string;
  readonly shell: 'electron' | 'harness';
  readonly platform: NodeJS.Platform;
  readonly packaged: boolean;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly managed: ManagedConfigRead;
  /** The development identity provider's CA certificate (PEM); never set in production. */
  readonly idpCaCertPem?: string;
  readonly log: (message: string, error?: unknown) => void;
}

/** An event for the page, as the shell forwards it. */
export type ClearanceEventListener = <E extends IpcEventName>(event: E, payload: IpcEventPayload<E>) => void;

/** The app's services as the shell sees them: IPC handlers, an event feed, a lifecycle. */
export interface ClearanceServices {
  readonly handlers: IpcHandlers;
  onEvent(listener: ClearanceEventListener): Disposable;
  canOpenExternal(url: string): boolean;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * The composition root: builds every service with `new`, from the shell's adapters.
 */
export function createServices(adapters: Adapters, config: ClearanceConfig): ClearanceServices {
  const events = new Emitter<{ name: IpcEventName; payload: unknown }>();
  const externalHosts = new Set((config.managed.config.externalHosts ?? []).map((h) => h.toLowerCase()));
  const canOpenExternal = (url: string) => isAllowedExternalUrl(url, externalHosts);
  const notYet = () => Promise.reject(new IpcFailure('INTERNAL', 'This part of Clearance is not available yet.'));

  const handlers: IpcHandlers = {
    getAppInfo: async () => ({
      name: 'Clearance',
      version: config.appVersion,
      platform: config.platform,
      shell: config.shell,
      gatewayUrl: config.gatewayUrl,
    }),
    getSessionState: async () => ({ status: 'signed-out', tokenPersistence: 'encrypted' }),
    signIn: notYet,
    cancelSignIn: notYet,
    signOut: notYet,
    getEntitlements: async () => ({ status: 'none', models: [], live: 'offline' }),
    refreshEntitlements: notYet,
    getDeviceStatus: async () => ({ checks: [], requiredChecks: [], gate: 'unknown' }),
    recheckDevice: notYet,
    sendChat: notYet,
    stopChat: notYet,
    listConversations: async () => [],
    getConversation: notYet,
    renameConversation: notYet,
    deleteConversation: notYet,
    restoreConversation: notYet,
    exportConversation: notYet,
    openExternal: async ({ url }) => {
      if (!canOpenExternal(url)) return { opened: false };
      await adapters.browser.open(url);
      return { opened: true };
    },
  };

  return {
    handlers,
    onEvent: (listener) => events.event(({ name, payload }) => listener(name, payload as never)),
    canOpenExternal,
    start: async () => {},
    dispose: async () => events.dispose(),
  };
}
