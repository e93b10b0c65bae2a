import { mkdir, mkdtemp } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceTrustOptions } from '../../gateway/device/attestation/options';
import { startStack, type RunningStack } from '../../gateway/stack';
import type { DeviceGateScope } from '../../shared/discovery';
import { startSoftwareTpm, type SoftwareTpm } from '../../gateway/testing/swtpm';
import { NullHardwareKeyProvider, type HardwareKeyProvider } from '../../main/device/key';
import { TpmKeyProvider } from '../../main/device/tpm/tpm2-tools';
import {
  compliantLinuxDevice,
  createRecordedPostureService,
  noncompliantLinuxDevice,
} from '../../main/device/fixtures/devices';
import { createNodeAdapters, MemorySecretStore } from '../../main/node/adapters';
import type { Adapters, Clock, ExternalBrowser, HttpClient, SecretStore } from '../../main/platform';
import { readManagedPolicy } from '../../main/config/managed';
import { UNMANAGED, type ManagedPolicy } from '../../main/config/policy';
import type { PostureSource } from '../../main/access/AccessFlow';
import { createServices, type ClearanceServices } from '../../main/services';
import { startBridgeServer, type BridgeServer } from './server';

/**
 * Which device the harness is: recorded posture outputs with a software key (`compliant`,
 * `noncompliant`), the recorded compliant device whose key a software TPM (swtpm) holds and attests
 * (`tpm`), or this machine's real checks and its own TPM if it has one (`real`).
 */
export type HarnessDevice = 'compliant' | 'noncompliant' | 'tpm' | 'real';

/** Every `--device` the harness knows. */
export const HARNESS_DEVICES: readonly HarnessDevice[] = ['compliant', 'noncompliant', 'tpm', 'real'];

/** Options for {@link startHarness}. */
export interface HarnessOptions {
  /** Profile folder (token cache, device key, conversations). A fresh temporary one by default. */
  readonly profileDir?: string;
  /** Folder for the demo stack's state; a fresh temporary one by default. */
  readonly stackDir?: string;
  /** Use a running stack instead of starting one. */
  readonly stack?: RunningStack;
  readonly device?: HarnessDevice;
  /** Posture checks in place of the device's recorded ones (a spec that fixes the device mid-test). */
  readonly posture?: PostureSource;
  /**
   * With `device: 'tpm'` and a running `stack`: the software TPM whose manufacturer that stack's
   * gateway trusts. Without it the harness starts one and a stack that trusts it.
   */
  readonly tpm?: SoftwareTpm;
  /** The started stack's enrolment policy and device trust (`--device tpm` adds its TPM's roots). */
  readonly deviceTrust?: DeviceTrustOptions;
  /** The started stack's device gate scope (discovery's `device_policy.scope`); the gateway's default when omitted. */
  readonly deviceGateScope?: DeviceGateScope;
  /**
   * A managed-device certificate the app presents by mutual TLS (PEM key and certificate, as Node's
   * TLS takes them), and the CA of the gateway's own TLS certificate when the gateway terminates TLS.
   */
  readonly tls?: {
    readonly clientCertificate?: { readonly cert: string; readonly key: string };
    readonly gatewayCaPem?: string;
  };
  readonly port?: number;
  readonly secrets?: SecretStore;
  /** Called with each URL the app asks the system browser to open (the sign-in page). */
  readonly onOpenExternal?: (url: string) => void;
  readonly demoTokensPerSecond?: number;
  /** The app's clock (a spec moves it forward to reach a document's expiry). */
  readonly clock?: Clock;
  readonly log?: (message: string, error?: unknown) => void;
  /** IT's managed configuration, already read. */
  readonly managed?: ManagedPolicy;
  /**
   * A folder laid out like `/etc/clearance` (policy.json, policy.d/), read by the real Linux reader;
   * its files must be owned by the user running the harness instead of root.
   */
  readonly managedPolicyDir?: string;
}

/** A running harness: the app's services behind a loopback page, plus the demo stack. */
export interface Harness {
  readonly url: string;
  readonly bridge: BridgeServer;
  readonly services: ClearanceServices;
  readonly stack: RunningStack;
  readonly profileDir: string;
  /** The software TPM holding the device key (`device: 'tpm'`). */
  readonly tpm?: SoftwareTpm;
  /** Resolves with the next URL the app opens in the "system browser". */
  nextExternalUrl(): Promise<string>;
  close(): Promise<void>;
}

/** The recorded device for a harness option; `real` leaves the app to run this machine's checks. */
function postureFor(device: HarnessDevice) {
  if (device === 'real') return undefined;
  return createRecordedPostureService(device === 'noncompliant' ? noncompliantLinuxDevice : compliantLinuxDevice);
}

/** `fetch` through Node's TLS with the harness's client certificate and the gateway's CA (undici). */
function tlsHttpClient(tls: NonNullable<HarnessOptions['tls']>): HttpClient {
  const agent = new Agent({
    connect: {
      ...(tls.gatewayCaPem ? { ca: [...rootCertificates, tls.gatewayCaPem] } : {}),
      ...(tls.clientCertificate ? { cert: tls.clientCertificate.cert, key: tls.clientCertificate.key } : {}),
    },
  });
  return (input, init) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;
}

/** The device key's store for a harness device; `undefined` lets the app look for this machine's TPM. */
function hardwareKeysFor(device: HarnessDevice, tpm: SoftwareTpm | undefined, profileDir: string, adapters: Adapters) {
  if (device === 'real') return undefined;
  if (device !== 'tpm') return new NullHardwareKeyProvider() satisfies HardwareKeyProvider;
  if (!tpm) throw new Error('The tpm device needs a software TPM');
  return new TpmKeyProvider({ commands: adapters.commands, folder: join(profileDir, 'tpm-key'), tcti: tpm.tcti });
}

/**
 * Starts the browser harness: the same composition root as Electron, with Node adapters.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const log = options.log ?? (() => {});
  const profileDir = options.profileDir ?? (await mkdtemp(join(tmpdir(), 'clearance-profile-')));
  await mkdir(profileDir, { recursive: true });
  const device = options.device ?? 'compliant';
  const ownStack = !options.stack;
  const ownTpm = device === 'tpm' && !options.tpm;
  if (device === 'tpm' && options.stack && !options.tpm) {
    throw new Error('The tpm device on a running stack needs the software TPM that stack trusts (options.tpm)');
  }
  const tpm = ownTpm ? await startSoftwareTpm() : options.tpm;
  let stack: RunningStack;
  try {
    stack =
      options.stack ??
      (await startStack({
        stateDir: options.stackDir ?? (await mkdtemp(join(tmpdir(), 'clearance-stack-'))),
        demoTokensPerSecond: options.demoTokensPerSecond,
        ...(options.deviceGateScope ? { deviceGateScope: options.deviceGateScope } : {}),
        ...(tpm || options.deviceTrust
          ? {
              deviceTrust: {
                ...options.deviceTrust,
                ...(tpm ? { tpmManufacturerRoots: [tpm.rootCaPem, tpm.issuerCaPem] } : {}),
              },
            }
          : {}),
        log: (line) => log(line),
      }));
  } catch (error) {
    if (ownTpm) await tpm?.close();
    throw error;
  }

  const waiting: Array<(url: string) => void> = [];
  const opened: string[] = [];
  const browser: ExternalBrowser = {
    async open(url) {
      options.onOpenExternal?.(url);
      const next = waiting.shift();
      if (next) next(url);
      else opened.push(url);
    },
  };

  const adapters = {
    ...createNodeAdapters({
      ...(options.tls ? { http: tlsHttpClient(options.tls) } : {}),
      paths: { userData: profileDir, logs: join(profileDir, 'logs') },
      browser,
      secrets: options.secrets ?? new MemorySecretStore(),
    }),
    ...(options.clock ? { clock: options.clock } : {}),
  };
  const managed =
    options.managed ??
    (options.managedPolicyDir
      ? await readManagedPolicy({
          platform: 'linux',
          commands: adapters.commands,
          linuxDir: options.managedPolicyDir,
          ownership: { trustedUid: process.getuid?.() ?? 0 },
        })
      : UNMANAGED);
  const hardwareKeys = hardwareKeysFor(device, tpm, profileDir, adapters);
  const services = createServices(adapters, {
    gatewayUrl: (managed.view.state === 'invalid' ? undefined : managed.config.gatewayUrl) ?? stack.gatewayUrl,
    appVersion: '0.1.0',
    shell: 'harness',
    platform: process.platform,
    packaged: false,
    argv: [],
    env: {},
    managed,
    idpCaCertPem: stack.caCertPem,
    posture: options.posture ?? postureFor(device),
    ...(hardwareKeys ? { hardwareKeys } : {}),
    log,
  });
  const bridge = await startBridgeServer({ services, port: options.port, log });
  void services.start();

  return {
    url: bridge.url,
    bridge,
    services,
    stack,
    profileDir,
    ...(tpm ? { tpm } : {}),
    nextExternalUrl: () => {
      const ready = opened.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      await bridge.close();
      await services.dispose();
      if (ownStack) await stack.close();
      if (ownTpm) await tpm?.close();
    },
  };
}
