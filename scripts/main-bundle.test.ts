import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPC_PREFIX, ipcCalls } from '../shared/ipc';
import { mainBuildOptions } from './build-main';

/**
 * Runs the main bundle as it is packaged (dist/main/index.cjs, built here into a temporary folder)
 * under a recording stand-in for Electron, and checks what it registers: electron-log's initialize()
 * or any other library adding a preload or an IPC channel would show up here.
 */
interface Recording {
  readonly ipc: readonly (readonly [string, string])[];
  readonly preloads: readonly string[];
  readonly sessionPreloads: readonly string[];
  readonly windows: number;
  readonly loaded: readonly string[];
  readonly errors: readonly string[];
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clearance-main-bundle-'));
  await Promise.all(mainBuildOptions(join(dir, 'dist')).map((options) => build({ ...options, sourcemap: false })));
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

function runMain(): Promise<Recording> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      ['--require', resolve('scripts/testing/recording-electron.cjs'), join(dir, 'dist', 'main', 'index.cjs')],
      {
        env: {
          PATH: process.env.PATH,
          HOME: dir,
          RECORDING_ELECTRON_DIR: dir,
          CLEARANCE_GATEWAY_URL: 'http://127.0.0.1:9',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', () => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RECORDING '));
      if (!line) reject(new Error(`The main bundle did not open its window.\n${out}\n${err}`));
      else resolvePromise(JSON.parse(line.slice('RECORDING '.length)) as Recording);
    });
  });
}

describe('the packaged main bundle', () => {
  it('registers exactly one preload and no IPC channel outside the contract', async () => {
    const recording = await runMain();
    expect(recording.errors).toEqual([]);
    expect(recording.windows).toBe(1);
    expect(recording.loaded).toEqual(['app://clearance/index.html']);
    expect(recording.preloads).toHaveLength(1);
    expect(recording.preloads[0]).toMatch(/[/\\]preload[/\\]index\.cjs$/);
    expect(recording.sessionPreloads).toEqual([]);
    const contract = Object.keys(ipcCalls).map((channel) => IPC_PREFIX + channel);
    expect(recording.ipc.filter(([kind]) => kind !== 'handle')).toEqual([]);
    expect(recording.ipc.map(([, channel]) => channel).sort()).toEqual(contract.sort());
  }, 60_000);
});
