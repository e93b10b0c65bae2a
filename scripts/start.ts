import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startStack } from '../gateway/stack';

/**
 * `npm start`: the embedded demo stack (identity provider + gateway) and the Electron app pointed at it.
 *
 * The gateway runs in this Node process (the pinned Node 24, with its built-in SQLite), not in Electron. Where the Electron binary is not installed
 * (it cannot be downloaded on some machines), the same app opens in the browser harness instead.
 */
const require = createRequire(import.meta.url);

function electronBinary(): string | undefined {
  const electronDir = dirname(require.resolve('electron/package.json'));
  const pathFile = join(electronDir, 'path.txt');
  if (!existsSync(pathFile)) return undefined;
  return require('electron') as string;
}

async function main(): Promise<void> {
  const binary = electronBinary();
  if (!binary) {
    console.log(
      '\nThe Electron binary is not installed on this machine (it is downloaded on first use, and this machine cannot).' +
        '\nOpening the same app in the browser harness instead (as `npm run demo:web`).\n',
    );
    const harness = spawn(process.execPath, ['--import', 'tsx', 'e2e/harness/cli.ts'], { stdio: 'inherit' });
    harness.on('exit', (code) => process.exit(code ?? 0));
    return;
  }
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
