import { join } from 'node:path';
import type { IpcEventName, IpcEventPayload } from '../shared/ipc';
import { AccessFlow, toIpcFailure, type PostureSource } from './access/AccessFlow';
import { ChatService } from './chat/ChatService';
import { createChatHandlers } from './chat/handlers';
import type { ManagedPolicy } from './config/managed';
import { ConversationStore } from './conversations/ConversationStore';
import type { FuseReading } from './device/posture/fuses';
import { PostureService } from './device/posture/service';
import { Emitter, type Disposable } from './events';
import { isAllowedExternalUrl } from './external/allowList';
import type { IpcHandlers } from './ipc/dispatch';
import type { Adapters } from './platform';

/** How the shell starts the app: the same for Electron and the browser harness but for `shell`. */
export interface ClearanceConfig {
  readonly gatewayUrl: string;
  readonly appVersion: string;
  readonly shell: 'electron' | 'harness';
  readonly platform: NodeJS.Platform;
  readonly packaged: boolean;
  /** The Electron fuses as read from the running executable (packaged Electron only). */
  readonly fuses?: FuseReading;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** IT's managed configuration; when `invalid`, nothing starts and the page shows why. */
  readonly managed: ManagedPolicy;
  /** The development identity provider's CA certificate (PEM); never set in production. */
  readonly idpCaCertPem?: string;
  /**
   * A recorded device posture (the browser harness's demo devices). Electron never sets it: the app
   * then runs this machine's real checks.
   */
  readonly posture?: PostureSource;
  readonly log: (message: string, error?: unknown) => void;
}

/** An event for the page, as the shell forwards it. */
export type ClearanceEventListener = <E extends IpcEventName>(event: E, payload: IpcEventPayload<E>) => void;

/** The app's services as the shell sees them: IPC handlers, an event feed, a lifecycle. */
export interface ClearanceServices {
  readonly handlers: IpcHandlers;
  readonly access: AccessFlow;
  readonly conversations: ConversationStore;
  readonly chat: ChatService;
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
  const emit = <E extends IpcEventName>(name: E, payload: IpcEventPayload<E>) => events.fire({ name, payload });

  const posture: PostureSource =
    config.posture ??
    new PostureService({
      platform: config.platform,
      commands: adapters.commands,
      launch: { packaged: config.packaged, argv: config.argv, env: config.env, fuses: config.fuses },
      managedConfigPresent: config.managed.trustedFilePresent,
      // Read when the checks run, after discovery: `access` is built just below.
      minOsVersions: (): Readonly<Record<string, string>> | undefined => access.minOsVersions,
    });
  const access = new AccessFlow({
    adapters,
    gatewayUrl: config.gatewayUrl,
    appVersion: config.appVersion,
    platform: config.platform,
    packaged: config.packaged,
    managed: config.managed,
    posture,
    idpCaCertPem: config.idpCaCertPem,
    log: config.log,
  });
  access.onSessionChanged((state) => emit('sessionChanged', state));
  access.onDeviceChanged((status) => emit('deviceChanged', status));
  access.onEntitlementsChanged((view) => emit('entitlementsChanged', view));

  const conversations = new ConversationStore({
    dir: join(adapters.paths.userData, 'conversations'),
    secrets: adapters.secrets,
    clock: adapters.clock,
    log: config.log,
  });
  const chat = new ChatService({
    store: conversations,
    fetch: access.gatewayFetch,
    checkModel: (model) => access.entitlements.checkModel(model),
    onForbidden: () => access.entitlements.onChatForbidden(),
    emit: (name, payload) => events.fire({ name, payload }),
    clock: adapters.clock,
    log: config.log,
  });

  /** https hosts the system browser may open: IT's list, the identity provider, and remediation links the signed document names. */
  const canOpenExternal = (url: string): boolean => {
    const hosts = new Set((config.managed.config.externalHosts ?? []).map((h) => h.toLowerCase()));
    const idp = access.identityProviderHost;
    if (idp) hosts.add(idp.toLowerCase());
    for (const model of access.entitlements.view.models) {
      if (model.remediation) hosts.add(new URL(model.remediation.url).hostname.toLowerCase());
    }
    return isAllowedExternalUrl(url, hosts);
  };

  const withErrors =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (error) {
        throw toIpcFailure(error);
      }
    };

  const managedInvalid = config.managed.view.state === 'invalid';
  const refuseWhenInvalid = () => {
    if (managedInvalid)
      throw new Error('Your organisation’s settings for Clearance have a problem; see the error screen.');
  };

  const handlers: IpcHandlers = {
    getManagedPolicy: async () => config.managed.view,
    getAppInfo: async () => ({
      name: 'Clearance',
      version: config.appVersion,
      platform: config.platform,
      shell: config.shell,
      gatewayUrl: config.gatewayUrl,
    }),
    getSessionState: async () => access.sessionState,
    signIn: withErrors(async () => {
      refuseWhenInvalid();
      return access.signIn();
    }),
    cancelSignIn: async () => access.cancelSignIn(),
    signOut: withErrors(async () => {
      await chat.dispose();
      return access.signOut();
    }),
    getEntitlements: async () => access.entitlements.view,
    refreshEntitlements: () => access.entitlements.refresh(),
    getDeviceStatus: async () => access.deviceStatus,
    recheckDevice: withErrors(() => access.recheckDevice()),
    ...createChatHandlers({ store: conversations, chat, files: adapters.files }),
    openExternal: async ({ url }) => {
      if (!canOpenExternal(url)) {
        config.log(`Refused to open ${url}: not an https URL on the allow-list`);
        return { opened: false };
      }
      await adapters.browser.open(url);
      return { opened: true };
    },
  };

  return {
    handlers,
    access,
    conversations,
    chat,
    onEvent: (listener) => events.event(({ name, payload }) => listener(name, payload as never)),
    canOpenExternal,
    start: async () => {
      if (managedInvalid) {
        const problems = config.managed.view.problems.map((p) => `${p.key ?? p.location}: ${p.message}`);
        config.log(`Managed configuration is invalid; Clearance will not start: ${problems.join('; ')}`);
        return;
      }
      await conversations.open().catch((error: unknown) => config.log('Conversations could not be opened', error));
      await access.start();
    },
    dispose: async () => {
      await chat.dispose();
      await access.dispose();
      await conversations.close();
      events.dispose();
    },
  };
}
