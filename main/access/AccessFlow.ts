import { join } from 'node:path';
import { decodeJwt, type JWK } from 'jose';
import type { DiscoveryDocument } from '../../shared/discovery';
import type { DeviceStatus, EntitlementsView, SessionState } from '../../shared/ipc';
import type { ManagedPolicy } from '../config/managed';
import { DeviceKeyStore, type HardwareKeyProvider } from '../device/key';
import { hardwareKeyProviderFor } from '../device/hardware';
import { DeviceGate } from '../device/gate';
import { PostureService } from '../device/posture/service';
import { EntitlementService, NullEntitlementService, type EntitlementSource } from '../entitlements/service';
import { Emitter, type Disposable } from '../events';
import { resolveIdentityConfig } from '../identity/config';
import { IdentityError } from '../identity/errors';
import { IdentityService } from '../identity/IdentityService';
import { IpcFailure } from '../ipc/dispatch';
import type { Adapters } from '../platform';
import { ENROLMENT_REASONS, type EnrolmentReason } from '../../shared/reasons';
import { GatewaySessionError } from '../session/errors';
import { GatewaySession } from '../session/gateway-session';
import { loadDiscovery } from './discovery';

/** Something that reports the device's posture checks (real commands, or a recorded device in the harness). */
export interface PostureSource {
  check(): ReturnType<PostureService['check']>;
}

/** What the access flow is built from. */
export interface AccessFlowOptions {
  readonly adapters: Adapters;
  readonly gatewayUrl: string;
  readonly appVersion: string;
  readonly platform: NodeJS.Platform;
  /** The installed app: every gateway and identity-provider URL must be https. */
  readonly packaged?: boolean;
  readonly managed: Pick<ManagedPolicy, 'config'>;
  readonly posture: PostureSource;
  readonly idpCaCertPem?: string;
  /**
   * Where the device key lives when hardware holds it; default this machine's TPM when it has one
   * (main/device/hardware.ts). The browser harness passes its own (none, or a software TPM).
   */
  readonly hardwareKeys?: HardwareKeyProvider;
  /** The folder of a person's profile (main/profile/PersonProfiles.ts), for their entitlement cache. */
  readonly profileFolder?: (personId: string) => string;
  readonly log: (message: string, error?: unknown) => void;
}

/**
 * The chain that decides what a person may do: discovery, sign-in, the device gate, the gateway
 * session bound to the device key, and the signed entitlements.
 *
 * Each link is its own service; this class only starts them in order, tears them down on sign-out,
 * and turns their failures into errors the renderer can show.
 */
export class AccessFlow {
  private readonly sessionChanged = new Emitter<SessionState>();
  private readonly entitlementsChanged = new Emitter<EntitlementsView>();
  readonly onSessionChanged = this.sessionChanged.event;
  readonly onEntitlementsChanged = this.entitlementsChanged.event;
  readonly onDeviceChanged: DeviceGate['onDidChange'];

  readonly keys: DeviceKeyStore;
  readonly gate: DeviceGate;
  private discovery: DiscoveryDocument | undefined;
  private discoveryError: string | undefined;
  private identity: IdentityService | undefined;
  private session: GatewaySession | undefined;
  private entitlementSource: EntitlementSource;
  private entitlementSubscriptions: Disposable[] = [];
  private subject: string | undefined;
  /** Whose entitlements {@link AccessFlow.entitlementSource} holds. */
  private entitlementsPerson: string | undefined;
  private starting: Promise<void> | undefined;
  private activating: Promise<void> | undefined;

  constructor(private readonly options: AccessFlowOptions) {
    const { adapters } = options;
    this.keys = new DeviceKeyStore({
      paths: adapters.paths,
      secrets: adapters.secrets,
      hardware:
        options.hardwareKeys ??
        hardwareKeyProviderFor({
          platform: options.platform,
          commands: adapters.commands,
          userData: adapters.paths.userData,
          ...(options.managed.config.tpmTcti ? { tcti: options.managed.config.tpmTcti } : {}),
        }),
      clock: adapters.clock,
      log: options.log,
    });
    this.gate = new DeviceGate({
      posture: () => options.posture.check(),
      deviceKey: () => this.keys.load(),
      requiredChecks: () => this.discovery?.device_policy.required_checks,
      scope: () => this.discovery?.device_policy.scope,
      clock: adapters.clock,
    });
    this.onDeviceChanged = this.gate.onDidChange;
    // Discovery's contact is known only once discovery answers: the device gate shows it before any document.
    this.entitlementSource = new NullEntitlementService(() => this.supportContact);
  }

  /** Where sign-in stands; before discovery answers, signed out with the reason. */
  get sessionState(): SessionState {
    if (this.identity) return this.identity.state;
    return {
      status: 'signed-out',
      tokenPersistence: this.options.adapters.secrets.backend() === 'basic_text' ? 'session-only' : 'encrypted',
      ...(this.discoveryError ? { lastError: this.discoveryError } : {}),
    };
  }

  /** The gateway's discovery document in use (public: no secrets), for diagnostics. */
  get discoveryDocument(): DiscoveryDocument | undefined {
    return this.discovery;
  }

  get entitlements(): EntitlementSource {
    return this.entitlementSource;
  }

  get deviceStatus(): DeviceStatus {
    return this.gate.status();
  }

  /** Who is signed in (main/profile/personId.ts); undefined when nobody is. */
  get personId(): string | undefined {
    return this.identity?.personId;
  }

  /** Minimum OS versions the gateway's device policy names (discovery), for the os-version check. */
  get minOsVersions(): Readonly<Record<string, string>> | undefined {
    return this.discovery?.device_policy.min_os_versions;
  }

  /** Whom users should contact: IT's managed `supportContact` when set, else the gateway's (discovery). */
  get supportContact(): string | undefined {
    return this.options.managed.config.supportContact ?? this.discovery?.support_contact;
  }

  /** The identity provider's host, which the system browser may always open. */
  get identityProviderHost(): string | undefined {
    try {
      return this.discovery ? new URL(this.discovery.identity_provider.authority).hostname : undefined;
    } catch {
      return undefined;
    }
  }

  /** Reads discovery, restores an earlier sign-in and, when signed in, goes on to the device and session. */
  start(): Promise<void> {
    this.starting ??= this.startOnce().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    if (!this.identity) {
      try {
        const { document, fromCache } = await loadDiscovery(
          this.options.gatewayUrl,
          this.options.adapters.http,
          this.options.adapters.paths,
          this.options.packaged ?? false,
        );
        if (fromCache) this.options.log('Gateway unreachable: using the discovery document from the last run');
        this.discovery = document;
        this.discoveryError = undefined;
      } catch (error) {
        this.discoveryError = error instanceof Error ? error.message : String(error);
        this.sessionChanged.fire(this.sessionState);
        return;
      }
      const config = resolveIdentityConfig(
        this.discovery.identity_provider,
        this.options.managed.config,
        this.options.idpCaCertPem,
      );
      this.identity = new IdentityService(this.options.adapters, config, { log: (m) => this.options.log(m) });
      this.identity.onDidChange((state) => {
        this.sessionChanged.fire(state);
        if (state.status === 'signed-out') void this.deactivate();
      });
      this.gate.notifyPolicyChanged();
    }
    const state = await this.identity.restore();
    this.sessionChanged.fire(state);
    if (state.status === 'signed-in') await this.activate();
    else void this.gate.recheck();
  }

  /** Starts an interactive sign-in; the outcome arrives as a session change. */
  async signIn(): Promise<SessionState> {
    if (!this.identity) await this.start();
    const identity = this.identity;
    if (!identity) throw new IpcFailure('GATEWAY_UNAVAILABLE', this.discoveryError ?? 'The gateway is not reachable.');
    identity.signIn().then(
      () => this.activate(),
      (error: unknown) => this.options.log('Sign-in did not complete', error),
    );
    return identity.state;
  }

  cancelSignIn(): SessionState {
    return this.identity ? this.identity.cancelSignIn() : this.sessionState;
  }

  /** Signs out: tokens and the gateway session go; the device key stays (it is this device's identity). */
  async signOut(): Promise<SessionState> {
    await this.deactivate();
    return this.identity ? this.identity.signOut() : this.sessionState;
  }

  /**
   * Runs the posture checks again and, if the device may go on (`pass`, or `limited` by the policy's
   * scope), re-attests, so the session's compliance follows the device (a fix lifts the model limits).
   */
  async recheckDevice(): Promise<DeviceStatus> {
    const status = await this.gate.recheck();
    if (mayGoOn(status) && this.identity?.state.status === 'signed-in') {
      if (this.session)
        await this.session.reattest().then(
          async () => {
            this.gate.setEnrolmentRefusal(undefined);
            // The session's compliance may have changed: the access view follows it at once (a fixed
            // device gets the models that need a compliant device back, a broken one loses them).
            await this.entitlementSource
              .refresh()
              .catch((e: unknown) => this.options.log('Access could not be refreshed after re-attestation', e));
          },
          (e: unknown) => {
            this.options.log('Re-attestation failed', e);
            this.noteEnrolmentRefusal(e);
          },
        );
      else await this.activate();
    }
    return this.gate.status();
  }

  /** Shows the gateway's enrolment refusal on the device screen; true when `error` was one. */
  private noteEnrolmentRefusal(error: unknown): boolean {
    const reason = error instanceof GatewaySessionError ? error.details.reason : undefined;
    if (!reason || !(ENROLMENT_REASONS as readonly string[]).includes(reason)) return false;
    this.gate.setEnrolmentRefusal({ reason: reason as EnrolmentReason, message: (error as Error).message });
    return true;
  }

  /** The gateway fetch chat uses: DPoP-bound, refused when no session exists. */
  readonly gatewayFetch = (path: string, init?: RequestInit): Promise<Response> => {
    if (!this.session) {
      return Promise.reject(new IpcFailure('NOT_SIGNED_IN', 'Sign in and pass the device check to chat.'));
    }
    return this.session.fetch(path, init).catch((error: unknown) => {
      throw toIpcFailure(error);
    });
  };

  private activate(): Promise<void> {
    this.activating ??= this.activateOnce().finally(() => (this.activating = undefined));
    return this.activating;
  }

  private async activateOnce(): Promise<void> {
    const identity = this.identity;
    const discovery = this.discovery;
    if (!identity || !discovery || identity.state.status !== 'signed-in') return;
    const device = await this.gate.recheck();
    // The local gate: a device that fails a required check goes no further, unless discovery scopes the
    // gate to models (`limited`): then the gateway's policy keeps it from only the models needing compliance.
    if (!mayGoOn(device)) return;
    if (!this.session) {
      const { adapters } = this.options;
      this.session = new GatewaySession({
        gatewayUrl: this.options.gatewayUrl,
        packaged: this.options.packaged ?? false,
        http: adapters.http,
        clock: adapters.clock,
        deviceKey: () => this.keys.load(),
        posture: async () => this.gate.status().checks,
        getIdpAccessToken: async () => {
          const token = await identity.getAccessToken();
          this.subject = subjectOf(token);
          return token;
        },
        onClaimsChallenge: async (header) => {
          const token = await identity.handleClaimsChallenge(header);
          this.subject = subjectOf(token);
          return token;
        },
        appVersion: this.options.appVersion,
        platform: this.options.platform,
        endpoints: {
          deviceChallenge: discovery.endpoints.device_challenge,
          session: discovery.endpoints.session,
          ...(discovery.endpoints.device_attestation
            ? { deviceAttestation: discovery.endpoints.device_attestation }
            : {}),
        },
        log: this.options.log,
      });
    }
    try {
      await this.session.ensureSession();
      this.gate.setEnrolmentRefusal(undefined);
    } catch (error) {
      this.options.log('Gateway session could not be established', error);
      if (this.noteEnrolmentRefusal(error)) return;
    }
    const personId = identity.personId;
    if (this.entitlementSource instanceof EntitlementService) {
      if (this.entitlementsPerson === personId) {
        await this.entitlementSource.reconnect();
        return;
      }
      // Someone else signed in without signing out first: nothing of the previous person's stays.
      await this.deactivate();
      return this.activateOnce();
    }
    const session = this.session;
    const entitlements = new EntitlementService({
      gatewayUrl: this.options.gatewayUrl,
      fetch: (path, init) => session.fetch(path, init),
      http: this.options.adapters.http,
      secrets: this.options.adapters.secrets,
      paths: this.options.adapters.paths,
      ...(personId !== undefined && this.options.profileFolder
        ? { cacheDirectory: join(this.options.profileFolder(personId), 'entitlements'), cacheAccount: personId }
        : {}),
      clock: this.options.adapters.clock,
      expectedSub: () => this.subject,
      expectedJkt: () => this.keys.current?.thumbprint,
      pinnedKeys: this.options.managed.config.pinnedEntitlementKeys as JWK[] | undefined,
      issuer: discovery.issuer,
      supportContact: this.supportContact,
      log: this.options.log,
    });
    this.entitlementSource = entitlements;
    this.entitlementsPerson = personId;
    this.entitlementSubscriptions = [
      entitlements.onDidChange((view) => this.entitlementsChanged.fire(view)),
      entitlements.onDidRevokeSession((revocation) => {
        this.options.log(
          `The gateway revoked this session: ${revocation.message ?? revocation.reason ?? 'no reason given'}`,
        );
        void this.session?.reattest().catch(() => {});
      }),
    ];
    await entitlements.start();
    this.entitlementsChanged.fire(entitlements.view);
  }

  private async deactivate(): Promise<void> {
    const entitlements = this.entitlementSource;
    this.entitlementSubscriptions.forEach((s) => s.dispose());
    this.entitlementSubscriptions = [];
    this.entitlementSource = new NullEntitlementService(() => this.supportContact);
    this.entitlementsPerson = undefined;
    if (entitlements instanceof EntitlementService) {
      await entitlements.signOut();
      entitlements.dispose();
    }
    this.session?.drop();
    this.session?.dispose();
    this.session = undefined;
    this.subject = undefined;
    this.entitlementsChanged.fire(this.entitlementSource.view);
  }

  async dispose(): Promise<void> {
    await this.deactivate();
    await this.identity?.dispose();
    this.gate.dispose();
    this.sessionChanged.dispose();
    this.entitlementsChanged.dispose();
  }
}

function subjectOf(token: string): string | undefined {
  try {
    const sub = decodeJwt(token).sub;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** Maps the services' own errors to what the renderer sees. */
export function toIpcFailure(error: unknown): IpcFailure {
  if (error instanceof IpcFailure) return error;
  if (error instanceof GatewaySessionError) {
    return new IpcFailure(
      error.code,
      error.message,
      error.details.reason ? { reason: error.details.reason } : undefined,
    );
  }
  if (error instanceof IdentityError) {
    const code = error.code === 'IDENTITY_PROVIDER_UNREACHABLE' ? 'GATEWAY_UNAVAILABLE' : error.code;
    return new IpcFailure(code, error.message);
  }
  return new IpcFailure('INTERNAL', error instanceof Error ? error.message : String(error));
}

/** Whether the local gate lets the app on to the gateway session: it passed, or it is limited to some models. */
function mayGoOn(device: DeviceStatus): boolean {
  return device.gate === 'pass' || device.gate === 'limited';
}
