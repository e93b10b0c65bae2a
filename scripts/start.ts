import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startStack } from '../gateway/stack';
import { installFailureLine, planElectron } from './electron-binary';

/**
 * `npm start`: the embedded demo stack (identity provider + gateway) and the Electron app pointed at it.
 *
 * The gateway runs in this Node process (the pinned Node 24, with its built-in SQLite), not in Electron.
 * When the Electron binary is missing, Electron's own installer fetches it (it honours ELECTRON_MIRROR and
 * electron_config_cache); only if that fails does the same app open in the browser harness, with one line
 * saying why.
 */
const require = createRequire(import.meta.url);

function installedElectron(): string | undefined {
  const electronDir = dirname(require.resolve('electron/package.json'));
  if (!existsSync(join(electronDir, 'path.txt'))) return undefined;
  const binary = require('electron') as string;
  return existsSync(binary) ? binary : undefined;
}

/** Runs `electron/install.js` as `npm install` would have; answers the binary, or the one line saying why not. */
function installElectron(): { readonly binary?: string; readonly line?: string } {
  const { version } = require('electron/package.json') as { version: string };
  console.log(`Fetching Electron ${version} with its installer…`);
  const result = spawnSync(process.execPath, [require.resolve('electron/install.js')], {
    encoding: 'utf8',
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const binary = result.status === 0 ? installedElectron() : undefined;
  if (binary) return { binary };
  return { line: installFailureLine(version, `${result.stderr ?? ''}${result.error?.message ?? ''}`, result.status) };
}

function openHarness(line: string): void {
  console.log(`\n${line}\n`);
  const harness = spawn(process.execPath, ['--import', 'tsx', 'e2e/harness/cli.ts'], { stdio: 'inherit' });
  harness.on('exit', (code) => process.exit(code ?? 0));
}

async function main(): Promise<void> {
  const plan = planElectron(installedElectron(), process.env);
  if (plan.kind === 'harness') return openHarness(plan.line);
  let binary = plan.kind === 'use' ? plan.binary : undefined;
  if (plan.kind === 'install') {
    const installed = installElectron();
    if (!installed.binary) return openHarness(installed.line ?? 'Electron could not be installed.');
    binary = installed.binary;
  }
  if (!binary) return;
  const stateDir = join('.state', 'stack');
  await mkdir(stateDir, { recursive: true });
  const stack = await startStack({ stateDir, log: (line) => console.log(line) });
  const caFile = join(stateDir, 'idp-ca.pem');
  await writeFile(caFile, stack.caCertPem);
  const stop = () => void stack.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  console.log(`Starting Clearance against ${stack.gatewayUrl}`);
  const electron = spawn(binary, ['.'], {
    stdio: 'inherit',
    env: { ...process.env, CLEARANCE_GATEWAY_URL: stack.gatewayUrl, CLEARANCE_DEV_CA_FILE: caFile },
  });
  electron.on('exit', (code) => void stack.close().then(() => process.exit(code ?? 0)));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
