import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deviceTrustFromEnvironment } from '../../gateway/device/attestation/options';
import { DeviceGateScope } from '../../shared/discovery';
import { MemorySecretStore } from '../../main/node/adapters';
import { HARNESS_DEVICES, startHarness, type HarnessDevice } from './harness';

/**
 * The harness's stand-in for the OS keychain: a key file in the demo profile, so sign-in, the device
 * key and conversations survive a restart of `npm run demo:web`. Development only; the app uses safeStorage.
 */
async function profileSecretKey(profile: string): Promise<Uint8Array> {
  const path = join(profile, '..', 'harness-keychain.key');
  try {
    const key = await readFile(path);
    if (key.length === 32) return key;
  } catch {
    // first run: make one below
  }
  const key = randomBytes(32);
  await writeFile(path, key, { mode: 0o600 });
  return key;
}

/**
 * `npm run demo:web`: the whole app in a browser, with the demo stack, on loopback.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: 'compliant' },
      port: { type: 'string', default: '5173' },
      profile: { type: 'string', default: join('.state', 'harness-profile') },
      'no-open': { type: 'boolean', default: false },
      /** The started stack's device gate: `app` (whole app) or `models` (only models requiring a compliant device). */
      'device-gate': { type: 'string' },
      /** A folder laid out like /etc/clearance (owned by you, not root) to try managed settings. */
      'managed-policy': { type: 'string' },
      /** A managed-device certificate (PEM) and its key the app presents by mutual TLS. */
      'client-cert': { type: 'string' },
      'client-key': { type: 'string' },
    },
  });
  const device = values.device as HarnessDevice;
  if (!HARNESS_DEVICES.includes(device)) {
    throw new Error(`--device must be ${HARNESS_DEVICES.join(', ')} (got "${device}")`);
  }
  if (Boolean(values['client-cert']) !== Boolean(values['client-key'])) {
    throw new Error('--client-cert and --client-key go together');
  }
  const gateScope = values['device-gate'] === undefined ? undefined : DeviceGateScope.safeParse(values['device-gate']);
  if (gateScope && !gateScope.success) {
    throw new Error(`--device-gate must be ${DeviceGateScope.options.join(' or ')} (got "${values['device-gate']}")`);
  }
  await mkdir(values.profile, { recursive: true });
  const deviceTrust = deviceTrustFromEnvironment(process.env);
  const harness = await startHarness({
    profileDir: values.profile,
    secrets: new MemorySecretStore(await profileSecretKey(values.profile)),
    stackDir: join('.state', 'stack'),
    device,
    managedPolicyDir: values['managed-policy'],
    ...(gateScope?.success ? { deviceGateScope: gateScope.data } : {}),
    ...(deviceTrust ? { deviceTrust } : {}),
    ...(values['client-cert'] && values['client-key']
      ? {
          tls: {
            clientCertificate: {
              cert: await readFile(values['client-cert'], 'utf8'),
              key: await readFile(values['client-key'], 'utf8'),
            },
          },
        }
      : {}),
    port: Number(values.port),
    log: (message, error) => console.log(error ? `${message}: ${String(error)}` : message),
    onOpenExternal: (url) => {
      console.log(`\nThe app asked the system browser to open:\n  ${url}\n`);
      if (!values['no-open']) spawn('xdg-open', [url], { stdio: 'ignore', detached: true }).on('error', () => {});
    },
  });
  console.log(`
Clearance browser harness
  App:               ${harness.url}
  Gateway:           ${harness.stack.gatewayUrl}
  Identity provider: ${harness.stack.idpUrl} (self-signed; your browser will warn once)
  Device:            ${device}${harness.tpm ? ` (software TPM at ${harness.tpm.tcti}; the gateway trusts its manufacturer)` : ''}
Demo personas (pick one on the sign-in page):
${harness.stack.personas.map((p) => `  - ${p.name} <${p.username}>: ${p.description}`).join('\n')}
Press Ctrl+C to stop.`);
  const stop = () => void harness.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
