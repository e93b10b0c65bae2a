import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** A running software TPM 2.0 with an endorsement key certificate from its own local CA. */
export interface SoftwareTpm {
  /** tpm2-tools TCTI string for this TPM. */
  readonly tcti: string;
  /** The local CA's root certificate (PEM): the "manufacturer root" a gateway trusts. */
  readonly rootCaPem: string;
  /** The local CA's intermediate that signs EK certificates (PEM). */
  readonly issuerCaPem: string;
  /** The CA folder, to give another TPM the same manufacturer. */
  readonly caDir: string;
  /** A scratch folder that is removed on close. */
  readonly dir: string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`swtpm exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`swtpm did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Manufactures and starts one swtpm on free loopback ports, with an RSA EK certificate at
 * NV index 0x01c00002 issued by a local CA in a temp folder (or by the CA in `caDir`).
 *
 * Needs the Debian packages swtpm, swtpm-tools and tpm2-tools. Stop it with `close()`.
 */
export async function startSoftwareTpm(options: { readonly caDir?: string } = {}): Promise<SoftwareTpm> {
  const dir = mkdtempSync(join(tmpdir(), 'clearance-swtpm-'));
  const caDir = options.caDir ?? join(dir, 'ca');
  const stateDir = join(dir, 'state');
  mkdirSync(caDir, { recursive: true });
  mkdirSync(stateDir);
  writeFileSync(
    join(dir, 'localca.conf'),
    [
      `statedir = ${caDir}`,
      `signingkey = ${join(caDir, 'signkey.pem')}`,
      `issuercert = ${join(caDir, 'issuercert.pem')}`,
      `certserial = ${join(caDir, 'certserial')}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'localca.options'),
    '--platform-manufacturer Clearance\n--platform-version 2.1\n--platform-model test\n',
  );
  writeFileSync(
    join(dir, 'swtpm_setup.conf'),
    [
      'create_certs_tool = /usr/bin/swtpm_localca',
      `create_certs_tool_config = ${join(dir, 'localca.conf')}`,
      `create_certs_tool_options = ${join(dir, 'localca.options')}`,
      'active_pcr_banks = sha256',
      '',
    ].join('\n'),
  );
  await promisify(execFile)(
    'swtpm_setup',
    ['--tpm2', '--tpmstate', stateDir, '--create-ek-cert', '--lock-nvram', '--config', join(dir, 'swtpm_setup.conf')],
    { timeout: 60_000 },
  );
  // The swtpm TCTI talks to the control channel on the command port + 1.
  let port = await freePort();
  while (!(await isFree(port + 1))) port = await freePort();
  const ctrlPort = port + 1;
  const child = spawn(
    'swtpm',
    [
      'socket',
      '--tpm2',
      '--tpmstate',
      `dir=${stateDir}`,
      '--server',
      `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl',
      `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
      '--flags',
      'startup-clear',
    ],
    { stdio: 'ignore' },
  );
  try {
    await waitForPort(port, child);
  } catch (error) {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    tcti: `swtpm:host=127.0.0.1,port=${port}`,
    rootCaPem: readFileSync(join(caDir, 'swtpm-localca-rootca-cert.pem'), 'utf8'),
    issuerCaPem: readFileSync(join(caDir, 'issuercert.pem'), 'utf8'),
    caDir,
    dir,
    close: async () => {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
