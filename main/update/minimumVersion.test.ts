import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../gateway/server';
import { UNMANAGED } from '../config/policy';
import { createNodeAdapters } from '../node/adapters';
import { createServices, type ClearanceServices } from '../services';

let dir: string | undefined;
let gateway: RunningGateway | undefined;
let services: ClearanceServices | undefined;

afterEach(async () => {
  await services?.dispose();
  await gateway?.close();
  // The app's last writes into its profile can land while the folder is being removed (ENOTEMPTY): retry.
  if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  [dir, gateway, services] = [undefined, undefined, undefined];
});

/** The app (browser-harness shell, version 0.1.0) against a real gateway on loopback announcing `minAppVersion`. */
async function appAgainstGateway(minAppVersion: string | undefined): Promise<ClearanceServices> {
  dir = await mkdtemp(join(tmpdir(), 'clearance-min-version-'));
  gateway = await startGateway({
    stateDir: join(dir, 'gateway'),
    // Nothing here signs anyone in: only discovery is read.
    identityProvider: {
      issuer: 'https://localhost:9',
      jwksUri: 'https://localhost:9/jwks',
      audience: 'clearance-gateway',
    },
    discovery: {
      identityProvider: {
        authority: 'https://localhost:9',
        clientId: 'clearance-desktop',
        scopes: ['openid'],
        protocol: 'OIDC',
      },
      ...(minAppVersion ? { minAppVersion } : {}),
    },
    processMetrics: false,
    log: () => {},
  });
  const profile = join(dir, 'profile');
  services = createServices(
    createNodeAdapters({ paths: { userData: profile, logs: profile }, browser: { open: async () => {} } }),
    {
      gatewayUrl: gateway.url,
      appVersion: '0.1.0',
      shell: 'harness',
      platform: 'linux',
      packaged: false,
      argv: [],
      env: {},
      managed: UNMANAGED,
      log: () => {},
    },
  );
  return services;
}

describe('the minimum app version the gateway announces', () => {
  it('reaches the app through discovery: an older app records it and tells the page', async () => {
    const app = await appAgainstGateway('0.2.0');
    const changes: unknown[] = [];
    app.onEvent((event, payload) => event === 'updateChanged' && changes.push(payload));
    await app.start();
    expect(app.access.discoveryDocument?.min_app_version).toBe('0.2.0');
    expect(await app.handlers.getUpdateStatus({})).toMatchObject({
      requiredVersion: '0.2.0',
      currentVersion: '0.1.0',
      // The browser harness never updates itself, so the page says to ask IT.
      state: 'disabled',
      canUpdate: false,
    });
    expect(changes).toContainEqual(expect.objectContaining({ requiredVersion: '0.2.0' }));
  });

  it('leaves an app at or above it alone', async () => {
    const app = await appAgainstGateway('0.1.0');
    await app.start();
    expect(app.access.discoveryDocument?.min_app_version).toBe('0.1.0');
    expect((await app.handlers.getUpdateStatus({})).requiredVersion).toBeUndefined();
  });
});
