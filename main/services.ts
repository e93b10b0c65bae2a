import { release } from 'node:os';
import { join } from 'node:path';
import type { IpcEventName, IpcEventPayload } from '../shared/ipc';
import { AccessFlow, toIpcFailure, type PostureSource } from './access/AccessFlow';
import { ChatService } from './chat/ChatService';
import { createChatHandlers, type PersonalChat } from './chat/handlers';
import type { ManagedPolicy } from './config/managed';
import { ConversationStore } from './conversations/ConversationStore';
import { buildDiagnostics } from './diagnostics/bundle';
import { LogRing } from './diagnostics/log-ring';
import type { HardwareKeyProvider } from './device/key';
import type { FuseReading } from './device/posture/fuses';
import { PostureService } from './device/posture/service';
import { Emitter, type Disposable } from './events';
import { isAllowedExternalUrl } from './external/allowList';
import type { IpcHandlers } from './ipc/dispatch';
import type { Adapters } from './platform';
import { ActivePerson } from './profile/ActivePerson';
import { PersonProfiles } from './profile/PersonProfiles';
import { resolveUpdateSettings } from './update/settings';
import { UpdateService, type Updater } from './update/UpdateService';

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
  /**
   * Where the device key lives when hardware holds it (the harness's software TPM, or none for its
   * recorded devices). Electron never sets it: the app then uses this machine's TPM when it has one.
   */
  readonly hardwareKeys?: HardwareKeyProvider;
  readonly log: (message: string, error?: unknown) => void;
  /**
   * The platform's updater (electron-updater; Electron only) and whether the installation names the
   * publisher its Windows updates must be signed by. Without it the app never updates itself.
   */
  readonly updater?: { readonly updater: Updater; readonly publisherConfigured: boolean };
}

/** An event for the page, as the shell forwards it. */
export type ClearanceEventListener = <E extends IpcEventName>(event: E, payload: IpcEventPayload<E>) => void;

/** The services that hold the signed-in person's own data. */
export interface PersonalData extends PersonalChat {
  readonly personId: string;
  close(): Promise<void>;
}

/** The app's services as the shell sees them: IPC handlers, an event feed, a lifecycle. */
export interface ClearanceServices {
  readonly handlers: IpcHandlers;
  readonly access: AccessFlow;
  /** The signed-in person's conversations and chat; nobody's while signed out. */
  readonly person: ActivePerson<PersonalData>;
  /** The in-app updater under IT's updatePolicy. */
  readonly update: UpdateService;
  /** The signed-in person's conversations (for tests and seeding); rejects when nobody is signed in. */
  conversations(): Promise<ConversationStore>;
  onEvent(listener: ClearanceEventListener): Disposable;
  canOpenExternal(url: string): boolean;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * The composition root: builds every service with `new`, from the shell's adapters.
 */
export function createServices(adapters: Adapters, config: ClearanceConfig): ClearanceServices {
  // Every line the services log is also kept for the diagnostics bundle.
  const logRing = new LogRing();
  const shellLog = config.log;
  config = {
    ...config,
    log: (message, error) => {
      logRing.add(error === undefined ? 'info' : 'error', message, error);
      shellLog(message, error);
    },
  };
  const events = new Emitter<{ name: IpcEventName; payload: unknown }>();
  const emit = <E extends IpcEventName>(name: E, payload: IpcEventPayload<E>) => events.fire({ name, payload });

  const posture: PostureSource =
    config.posture ??
    new PostureService({
      platform: config.platform,
      commands: adapters.commands,
      launch: { packaged: config.packaged, argv: config.argv, env: config.env, fuses: config.fuses },
      trustedPolicyFilePresent: config.managed.trustedFilePresent,
      // Read when the checks run, after discovery: `access` is built just below.
      minOsVersions: (): Readonly<Record<string, string>> | undefined => access.minOsVersions,
    });
  const profiles = new PersonProfiles({ userData: adapters.paths.userData, clock: adapters.clock, log: config.log });
  const access = new AccessFlow({
    adapters,
    profileFolder: (personId) => profiles.folderOf(personId),
    gatewayUrl: config.gatewayUrl,
    appVersion: config.appVersion,
    platform: config.platform,
    packaged: config.packaged,
    managed: config.managed,
    posture,
    idpCaCertPem: config.idpCaCertPem,
    ...(config.hardwareKeys ? { hardwareKeys: config.hardwareKeys } : {}),
    log: config.log,
  });
  const person: ActivePerson<PersonalData> = new ActivePerson(async (personId) => {
    const store = new ConversationStore({
      dir: join(profiles.folderOf(personId), 'conversations'),
      account: personId,
      secrets: adapters.secrets,
      clock: adapters.clock,
      log: config.log,
    });
    const chat = new ChatService({
      store,
      fetch: access.gatewayFetch,
      checkModel: (model) => access.entitlements.checkModel(model),
      onForbidden: () => access.entitlements.onChatForbidden(),
      // Nothing of a person who is no longer signed in reaches the page, not even a stream's last event.
      emit: (name, payload) => {
        if (person.isActive(personId)) events.fire({ name, payload });
      },
      clock: adapters.clock,
      log: config.log,
    });
    try {
      await store.open();
    } catch (error) {
      config.log('Conversations could not be opened', error);
    }
    return {
      personId,
      store,
      chat,
      close: async () => {
        await chat.dispose();
        await store.close();
      },
    };
  }, config.log);
  // Before the page hears of a new session, the data it will ask for is already the new person's.
  access.onSessionChanged((state) => {
    if (state.status === 'signed-in') person.switchTo(access.personId);
    else if (state.status === 'signed-out') person.switchTo(undefined);
  });
  access.onSessionChanged((state) => emit('sessionChanged', state));

  const update = new UpdateService({
    settings: resolveUpdateSettings({
      shell: config.shell,
      packaged: config.packaged,
      platform: config.platform,
      managed: config.managed.config,
      publisherConfigured: config.updater?.publisherConfigured ?? false,
    }),
    ...(config.shell === 'electron' && config.updater ? { updater: config.updater.updater } : {}),
    currentVersion: config.appVersion,
    now: () => new Date(adapters.clock.now()),
    log: config.log,
  });
  update.onDidChange((status) => emit('updateChanged', status));
  // Discovery is read before the first session change: its minimum version is known from then on.
  access.onSessionChanged(() => update.requireVersion(access.discoveryDocument?.min_app_version));
  access.onDeviceChanged((status) => emit('deviceChanged', status));
  access.onEntitlementsChanged((view) => emit('entitlementsChanged', view));

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
      const state = await access.signOut();
      person.switchTo(undefined);
      await person.settled();
      return state;
    }),
    getEntitlements: async () => access.entitlements.view,
    refreshEntitlements: () => access.entitlements.refresh(),
    getDeviceStatus: async () => access.deviceStatus,
    recheckDevice: withErrors(() => access.recheckDevice()),
    ...createChatHandlers({ person: () => person.current(), files: adapters.files }),
    getSaveStatus: async () => (await person.current())?.store.saveStatus() ?? { writable: true },
    takeNotices: async () => ({ notices: access.personId === undefined ? [] : await profiles.takeNotices() }),
    openExternal: async ({ url }) => {
      if (!canOpenExternal(url)) {
        config.log(`Refused to open ${url}: not an https URL on the allow-list`);
        return { opened: false };
      }
      await adapters.browser.open(url);
      return { opened: true };
    },
    reportRendererError: async ({ message, stack, source }) => {
      config.log(`The page reported an error (${source}): ${message}`, stack ? `\n${stack}` : undefined);
      return { logged: true };
    },
    exportDiagnostics: withErrors(async () => {
      const managedGateway = config.managed.view.entries.find((e) => e.key === 'gatewayUrl' && e.status === 'applied');
      const bundle = buildDiagnostics({
        app: { version: config.appVersion, shell: config.shell, packaged: config.packaged },
        platform: { os: config.platform, arch: process.arch, release: release() },
        gatewayUrl: {
          value: config.gatewayUrl,
          source: managedGateway
            ? `managed setting gatewayUrl (${managedGateway.source}, ${managedGateway.location})`
            : config.shell === 'harness'
              ? 'the browser harness'
              : 'CLEARANCE_GATEWAY_URL (development build)',
        },
        managed: config.managed.view,
        discovery: access.discoveryDocument,
        device: access.deviceStatus,
        entitlements: access.entitlements.view,
        session: access.sessionState,
        update: update.status,
        log: logRing.recent(),
        now: new Date(adapters.clock.now()),
      });
      const { savedTo } = await adapters.files.save(bundle.fileName, bundle.content);
      config.log(`Diagnostics exported${savedTo ? ` to ${savedTo}` : ''}`);
      return savedTo === undefined ? bundle : { ...bundle, savedTo };
    }),
    getUpdateStatus: async () => update.status,
    checkForUpdates: withErrors(() => update.check()),
    installUpdate: withErrors(() => update.install()),
  };

  return {
    handlers,
    access,
    update,
    person,
    conversations: async () => {
      const current = await person.current();
      if (!current) throw new Error('Nobody is signed in, so there are no conversations to reach');
      return current.store;
    },
    onEvent: (listener) => events.event(({ name, payload }) => listener(name, payload as never)),
    canOpenExternal,
    start: async () => {
      if (managedInvalid) {
        const problems = config.managed.view.problems.map((p) => `${p.key ?? p.location}: ${p.message}`);
        config.log(`Managed configuration is invalid; Clearance will not start: ${problems.join('; ')}`);
        return;
      }
      await profiles
        .setAsideLegacyData()
        .catch((error: unknown) => config.log('Data from before per-person profiles could not be set aside', error));
      void update.start();
      await access.start();
    },
    dispose: async () => {
      update.dispose();
      await person.dispose();
      await access.dispose();
      events.dispose();
    },
  };
}
