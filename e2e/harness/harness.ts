import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type RunningStack } from '../../gateway/stack';
import {
  compliantLinuxDevice,
  createRecordedPostureService,
  noncompliantLinuxDevice,
} from '../../main/device/fixtures/devices';
import { createNodeAdapters, MemorySecretStore } from '../../main/node/adapters';
import type { Clock, ExternalBrowser, SecretStore } from '../../main/platform';
import { readManagedPolicy } from '../../main/config/managed';
import { UNMANAGED, type ManagedPolicy } from '../../main/config/policy';
import { createServices, type ClearanceServices } from '../../main/services';
import { startBridgeServer, type BridgeServer } from './server';

/** Which device posture the harness reports (recorded outputs, or this machine's real checks). */
export type HarnessDevice = 'compliant' | 'noncompliant' | 'real';

/** Options for {@link startHarness}. */
export interface HarnessOptions {
  /** Profile folder (token cache, device key, conversations). A fresh temporary one by default. */
  readonly profileDir?: string;
  /** Folder for the demo stack's state; a fresh temporary one by default. */
  readonly stackDir?: string;
  /** Use a running stack instead of starting one. */
  readonly stack?: RunningStack;
  readonly device?: HarnessDevice;
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
  /** Resolves with the next URL the app opens in the "system browser". */
  nextExternalUrl(): Promise<string>;
  close(): Promise<void>;
}

/** The recorded device for a harness option; `real` leaves the app to run this machine's checks. */
function postureFor(device: HarnessDevice) {
  if (device === 'real') return undefined;
  return createRecordedPostureService(device === 'compliant' ? compliantLinuxDevice : noncompliantLinuxDevice);
}

/**
 * Starts the browser harness: the same composition root as Electron, with Node adapters.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const log = options.log ?? (() => {});
  const profileDir = options.profileDir ?? (await mkdtemp(join(tmpdir(), 'clearance-profile-')));
  await mkdir(profileDir, { recursive: true });
  const ownStack = !options.stack;
  const stack =
    options.stack ??
    (await startStack({
      stateDir: options.stackDir ?? (await mkdtemp(join(tmpdir(), 'clearance-stack-'))),
      demoTokensPerSecond: options.demoTokensPerSecond,
      log: (line) => log(line),
    }));

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
    posture: postureFor(options.device ?? 'compliant'),
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
    nextExternalUrl: () => {
      const ready = opened.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      await bridge.close();
      await services.dispose();
      if (ownStack) await stack.close();
    },
  };
}
