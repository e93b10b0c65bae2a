import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { connectSharedState } from '../cluster';
import { startGateway } from '../server';
import { readProductionConfigFile, sharedStateUrls, toGatewayOptions } from './config';

/**
 * `npm start -w gateway`: the gateway in production, from the configuration file in
 * `--config PATH` or `CLEARANCE_GATEWAY_CONFIG` (default /etc/clearance-gateway/gateway.json).
 *
 * It listens on plain HTTP on the configured interface; TLS ends in the reverse proxy in front.
 */
function configPath(argv: readonly string[]): string {
  const flag = argv.indexOf('--config');
  if (flag >= 0) {
    const value = argv[flag + 1];
    if (!value) throw new Error('--config needs a path');
    return value;
  }
  return process.env.CLEARANCE_GATEWAY_CONFIG ?? '/etc/clearance-gateway/gateway.json';
}

async function main(): Promise<void> {
  const path = configPath(process.argv.slice(2));
  const config = await readProductionConfigFile(path);
  const options = await toGatewayOptions(config, dirname(resolve(path)), (file) => readFile(file, 'utf8'));
  const urls = sharedStateUrls(config, process.env);
  const shared = urls
    ? await connectSharedState({ ...urls, log: (line) => console.log(`[gateway] ${line}`) })
    : undefined;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway({ ...options, ...(shared ? shared.options : {}) });
  } catch (error) {
    await shared?.close();
    throw error;
  }
  console.log(
    `[gateway] serving ${gateway.url} (configuration ${path}${shared ? '; shared state in PostgreSQL and Redis' : ''})`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`[gateway] ${signal}: stopping`);
    gateway
      .close()
      .then(() => shared?.close())
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
  console.error(`Cannot start the gateway: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
