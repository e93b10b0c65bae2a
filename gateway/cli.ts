import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PostureCheckId } from '../shared/device';
import { DeviceGateScope } from '../shared/discovery';
import { deviceTrustFromEnvironment } from './device/attestation/options';
import { startStack } from './stack';
import { startTestPostgres, startTestRedis, type TestService } from './testing/services';

/**
 * `npm run stack`: the development identity provider and the gateway on fixed loopback ports.
 *
 * Environment: CLEARANCE_STATE_DIR (default .state/stack), CLEARANCE_IDP_PORT (8443),
 * CLEARANCE_GATEWAY_PORT (8787), CLEARANCE_DEMO_TOKENS_PER_SECOND (40),
 * CLEARANCE_REQUIRED_CHECKS (comma-separated posture check ids), and the device trust settings of
 * `deviceTrustFromEnvironment` (CLEARANCE_ENROLMENT_POLICY, CLEARANCE_TPM_ROOTS, CLEARANCE_DEVICE_CA…).
 * Flags: `--instances N`, `--store sqlite|postgres`, `--device-gate app|models` (discovery's
 * `device_policy.scope`).
 */
function port(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new Error(`${name} must be a port number (0-65535), got "${text}"`);
  }
  return value;
}

function requiredChecks(): PostureCheckId[] | undefined {
  const text = process.env.CLEARANCE_REQUIRED_CHECKS;
  if (text === undefined) return undefined;
  return text
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean)
    .map((id) => {
      const parsed = PostureCheckId.safeParse(id);
      if (!parsed.success)
        throw new Error(
          `CLEARANCE_REQUIRED_CHECKS: unknown check "${id}" (one of ${PostureCheckId.options.join(', ')})`,
        );
      return parsed.data;
    });
}

/** `--instances N`, `--store sqlite|postgres` and `--device-gate app|models`. */
function topology(): { instances: number; store: 'sqlite' | 'postgres'; deviceGateScope?: DeviceGateScope } {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '1' },
      store: { type: 'string', default: 'sqlite' },
      'device-gate': { type: 'string' },
    },
  });
  const gate = values['device-gate'] === undefined ? undefined : DeviceGateScope.safeParse(values['device-gate']);
  if (gate && !gate.success) {
    throw new Error(`--device-gate must be ${DeviceGateScope.options.join(' or ')}, got "${values['device-gate']}"`);
  }
  const instances = Number(values.instances);
  if (!Number.isInteger(instances) || instances < 1 || instances > 16) {
    throw new Error(`--instances must be a whole number from 1 to 16, got "${values.instances}"`);
  }
  if (values.store !== 'sqlite' && values.store !== 'postgres') {
    throw new Error(`--store must be sqlite or postgres, got "${values.store}"`);
  }
  if (instances > 1 && values.store !== 'postgres') {
    throw new Error('Several instances share their state in PostgreSQL and Redis: add --store postgres');
  }
  return { instances, store: values.store, ...(gate?.success ? { deviceGateScope: gate.data } : {}) };
}

/** PostgreSQL and Redis from the environment, or throw-away local servers. */
async function sharedServers(): Promise<{ postgresUrl: string; redisUrl: string; started: TestService[] }> {
  const started: TestService[] = [];
  try {
    const postgresUrl = process.env.CLEARANCE_POSTGRES_URL || (await startLocal(started, startTestPostgres));
    const redisUrl = process.env.CLEARANCE_REDIS_URL || (await startLocal(started, startTestRedis));
    return { postgresUrl, redisUrl, started };
  } catch (error) {
    for (const service of started) await service.stop();
    throw error;
  }
}

async function startLocal(started: TestService[], start: () => Promise<TestService>): Promise<string> {
  const service = await start();
  started.push(service);
  return service.url;
}

async function main(): Promise<void> {
  const { instances, store, deviceGateScope } = topology();
  const servers = store === 'postgres' ? await sharedServers() : undefined;
  const stateDir = resolve(process.env.CLEARANCE_STATE_DIR ?? '.state/stack');
  const tokensText = process.env.CLEARANCE_DEMO_TOKENS_PER_SECOND;
  const checks = requiredChecks();
  const deviceTrust = deviceTrustFromEnvironment(process.env);
  let stack: Awaited<ReturnType<typeof startStack>>;
  try {
    stack = await startStack({
      stateDir,
      instances,
      ...(servers ? { sharedState: { postgresUrl: servers.postgresUrl, redisUrl: servers.redisUrl } } : {}),
      idpPort: port('CLEARANCE_IDP_PORT', 8443),
      gatewayPort: port('CLEARANCE_GATEWAY_PORT', 8787),
      ...(tokensText ? { demoTokensPerSecond: Number(tokensText) } : {}),
      ...(checks ? { requiredChecks: checks } : {}),
      ...(deviceGateScope ? { deviceGateScope } : {}),
      ...(deviceTrust ? { deviceTrust } : {}),
    });
  } catch (error) {
    for (const service of servers?.started ?? []) await service.stop();
    throw error;
  }
  const width = Math.max(...stack.personas.map((persona) => persona.id.length));
  console.log(
    [
      '',
      'Clearance development stack',
      `  identity provider  ${stack.idpUrl}  (CA certificate: ${stack.caCertPath})`,
      `  gateway            ${stack.gatewayUrl}  (discovery: ${stack.gatewayUrl}/.well-known/clearance)`,
      ...(stack.instanceUrls.length > 1
        ? [`  instances          ${stack.instanceUrls.join(', ')}  (round-robin behind the gateway URL)`]
        : []),
      ...(servers
        ? [
            `  PostgreSQL         ${servers.postgresUrl}${servers.started.some((s) => s.url === servers.postgresUrl) ? '  (throw-away, removed on stop)' : ''}`,
            `  Redis              ${servers.redisUrl}${servers.started.some((s) => s.url === servers.redisUrl) ? '  (throw-away, removed on stop)' : ''}`,
          ]
        : []),
      `  policies           ${stack.policiesDir}  (edit a .cedar file: connected clients update within a second)`,
      `  admin token        ${stack.adminToken}`,
      '',
      'Demo personas (pick one on the sign-in page):',
      ...stack.personas.map(
        (persona) =>
          `  ${persona.id.padEnd(width)}  ${persona.name} <${persona.username}>: ${persona.description} [${persona.groups.join(', ')}]`,
      ),
      '',
      'Press Ctrl+C to stop.',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping`);
    stack
      .close()
      .then(async () => {
        for (const service of servers?.started ?? []) await service.stop();
      })
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(`Cannot start the stack: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
