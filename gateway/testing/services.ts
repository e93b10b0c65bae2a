import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Where Debian's `postgresql` package puts the server binaries. */
export const POSTGRES_BIN = process.env.CLEARANCE_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';
/** Debian's `redis-server`. */
export const REDIS_SERVER = process.env.CLEARANCE_REDIS_SERVER ?? '/usr/bin/redis-server';

/** A real server started for a test, on a loopback port, in its own temp folder. */
export interface TestService {
  /** Connection URL (`postgres://…` or `redis://…`). */
  readonly url: string;
  readonly port: number;
  /** Stops the server by its pid and removes its folder. */
  stop(): Promise<void>;
}

/** True when the PostgreSQL and Redis binaries are installed (`.ci/run` installs them). */
export function sharedStateServersInstalled(): boolean {
  return existsSync(join(POSTGRES_BIN, 'postgres')) && existsSync(REDIS_SERVER);
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before listening`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until PostgreSQL accepts queries (it listens before recovery has finished). */
async function waitForPostgres(url: string, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, signal);
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts a throw-away PostgreSQL 15: `initdb` in a temp folder, then `postgres` in the
 * foreground on a free loopback port (as the `postgres` user when running as root, since the
 * server refuses root). Durability settings are PostgreSQL's defaults.
 */
export async function startTestPostgres(): Promise<TestService> {
  const dir = mkdtempSync(join(tmpdir(), 'clearance-pg-'));
  const data = join(dir, 'data');
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const postgres = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const uid = Number(postgres.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  // setpriv execs the server in place (no wrapper process), so its pid is the server's.
  const run = (command: string, args: string[]) =>
    asRoot
      ? { command: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', command, ...args] }
      : { command, args };
  const init = run(join(POSTGRES_BIN, 'initdb'), [
    '-D',
    data,
    '-U',
    'clearance',
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const initResult = spawnSync(init.command, init.args, { encoding: 'utf8' });
  if (initResult.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${initResult.stderr || initResult.stdout}`);
  }
  const port = await freePort();
  const server = run(join(POSTGRES_BIN, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
    '-c',
    'max_connections=200',
  ]);
  const child = spawn(server.command, server.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `postgres://clearance@127.0.0.1:${port}/postgres`;
  try {
    await waitForPort(port, child, 'postgres');
    await waitForPostgres(url, child);
  } catch (error) {
    await stopChild(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n${stderr}`, { cause: error });
  }
  return {
    url,
    port,
    async stop() {
      // SIGINT is PostgreSQL's "fast" shutdown.
      await stopChild(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a throw-away `redis-server` on a free loopback port with persistence off. */
export async function startTestRedis(): Promise<TestService> {
  const dir = mkdtempSync(join(tmpdir(), 'clearance-redis-'));
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  try {
    await waitForPort(port, child, 'redis-server');
  } catch (error) {
    await stopChild(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await stopChild(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
