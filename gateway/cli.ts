import { resolve } from 'node:path';
import { PostureCheckId } from '../shared/device';
import { deviceTrustFromEnvironment } from './device/attestation/options';
import { startStack } from './stack';

/**
 * `npm run stack`: the development identity provider and the gateway on fixed loopback ports.
 *
 * Environment: CLEARANCE_STATE_DIR (default .state/stack), CLEARANCE_IDP_PORT (8443),
 * CLEARANCE_GATEWAY_PORT (8787), CLEARANCE_DEMO_TOKENS_PER_SECOND (40),
 * CLEARANCE_REQUIRED_CHECKS (comma-separated posture check ids), and the device trust settings of
 * `deviceTrustFromEnvironment` (CLEARANCE_ENROLMENT_POLICY, CLEARANCE_TPM_ROOTS, CLEARANCE_DEVICE_CA…).
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

async function main(): Promise<void> {
  const stateDir = resolve(process.env.CLEARANCE_STATE_DIR ?? '.state/stack');
  const tokensText = process.env.CLEARANCE_DEMO_TOKENS_PER_SECOND;
  const checks = requiredChecks();
  const deviceTrust = deviceTrustFromEnvironment(process.env);
  const stack = await startStack({
    stateDir,
    idpPort: port('CLEARANCE_IDP_PORT', 8443),
    gatewayPort: port('CLEARANCE_GATEWAY_PORT', 8787),
    ...(tokensText ? { demoTokensPerSecond: Number(tokensText) } : {}),
    ...(checks ? { requiredChecks: checks } : {}),
    ...(deviceTrust ? { deviceTrust } : {}),
  });
  const width = Math.max(...stack.personas.map((persona) => persona.id.length));
  console.log(
    [
      '',
      'Clearance development stack',
      `  identity provider  ${stack.idpUrl}  (CA certificate: ${stack.caCertPath})`,
      `  gateway            ${stack.gatewayUrl}  (discovery: ${stack.gatewayUrl}/.well-known/clearance)`,
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
    stack.close().then(
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
