import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../server';
import { ProductionConfig, readProductionConfig, sharedStateUrls } from './config';

const example = JSON.parse(await readFile(new URL('gateway.example.json', import.meta.url), 'utf8')) as Record<
  string,
  unknown
>;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

let dir: string | undefined;
let gateway: RunningGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function writeConfig(config: unknown): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'clearance-gw-config-'));
  const path = join(dir, 'gateway.json');
  await writeFile(path, JSON.stringify(config));
  return path;
}

describe('the production configuration file', () => {
  it('accepts the documented example', () => {
    expect(ProductionConfig.safeParse(example).success).toBe(true);
  });

  it.each([
    ['publicUrl', { ...example, publicUrl: 'http://gateway.lab.example' }],
    [
      'discovery.identityProvider.authority',
      {
        ...example,
        discovery: {
          identityProvider: { authority: 'http://idp.lab.example', clientId: 'c', scopes: ['s'], protocol: 'OIDC' },
        },
      },
    ],
    ['listn', { ...example, listn: { port: 1 } }],
    ['listen.port', { ...example, listen: { port: 70000 } }],
    ['deviceGateScope', { ...example, deviceGateScope: 'everything' }],
  ])('refuses a file whose %s is wrong, naming the setting', async (setting, config) => {
    const path = await writeConfig(config);
    await expect(readProductionConfig(path)).rejects.toThrow(
      setting === 'listn' ? /unrecognized key.*listn/i : setting,
    );
  });

  it('refuses an admin token file that holds a short token', async () => {
    const path = await writeConfig({ ...example, stateDir: 'state', adminTokenFile: 'admin-token' });
    await writeFile(join(dir!, 'admin-token'), 'short\n');
    await expect(readProductionConfig(path)).rejects.toThrow(/adminTokenFile.*32 characters/);
  });

  it('starts a gateway that announces its public https URL in discovery', async () => {
    const port = await freePort();
    const path = await writeConfig({
      ...example,
      listen: { port },
      stateDir: 'state',
      policiesDir: undefined,
      catalogFile: undefined,
      adminTokenFile: 'admin-token',
      identityProvider: {
        kind: 'oidc',
        issuer: 'https://idp.lab.example',
        jwksUri: 'https://idp.lab.example/jwks',
        audience: 'api://clearance-gateway',
      },
    });
    await writeFile(join(dir!, 'admin-token'), `${'a'.repeat(40)}\n`);
    const options = await readProductionConfig(path);
    expect(options.stateDir).toBe(join(dir!, 'state'));
    gateway = await startGateway({ ...options, log: () => {} });
    const response = await fetch(`http://127.0.0.1:${port}/.well-known/clearance`);
    expect(response.status).toBe(200);
    const discovery = (await response.json()) as { issuer: string; support_contact: string };
    expect(discovery.issuer).toBe('https://clearance-gateway.lab.example');
    expect(discovery.support_contact).toBe('it@lab.example');
    expect(gateway.adminToken).toBe('a'.repeat(40));
  });
});

describe('sharedState', () => {
  const parse = (sharedState: unknown) => ProductionConfig.parse({ ...example, sharedState });

  it('reads the PostgreSQL and Redis URLs from the environment variables it names', () => {
    expect(sharedStateUrls(ProductionConfig.parse(example), {})).toBeUndefined();
    const urls = sharedStateUrls(parse({}), {
      CLEARANCE_POSTGRES_URL: 'postgres://gw:secret@db/clearance',
      CLEARANCE_REDIS_URL: 'redis://:secret@cache:6379',
    });
    expect(urls).toEqual({ postgresUrl: 'postgres://gw:secret@db/clearance', redisUrl: 'redis://:secret@cache:6379' });
    expect(
      sharedStateUrls(parse({ postgresUrlEnv: 'PG', redisUrlEnv: 'RD' }), { PG: 'postgres://db/c', RD: 'redis://r' }),
    ).toEqual({ postgresUrl: 'postgres://db/c', redisUrl: 'redis://r' });
  });

  it('refuses to start without a named URL, and a URL written in the file', () => {
    expect(() => sharedStateUrls(parse({}), { CLEARANCE_POSTGRES_URL: 'postgres://db/c' })).toThrow(
      /sharedState: set CLEARANCE_REDIS_URL/,
    );
    expect(ProductionConfig.safeParse({ ...example, sharedState: { postgresUrl: 'postgres://db/c' } }).success).toBe(
      false,
    );
  });
});
