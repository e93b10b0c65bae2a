import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner } from '../../platform';
import type { DevicePublicJwk, HardwareKeyHandle, HardwareKeyProvider, KeyAttestor } from '../key';

/** The kernel's TPM resource manager, the default TCTI. */
export const DEFAULT_TCTI = 'device:/dev/tpmrm0';
/** NV index of the RSA 2048 endorsement key certificate (TCG EK Credential Profile). */
export const EK_CERT_NV_INDEX = '0x01c00002';

/** What {@link TpmKeyProvider} needs. */
export interface TpmKeyProviderOptions {
  readonly commands: CommandRunner;
  /** Folder for the key blobs (TPM-wrapped: only this TPM can load them). */
  readonly folder: string;
  /** tpm2-tools TCTI, e.g. `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`. */
  readonly tcti?: string;
  /** Per command; default 10 s. */
  readonly timeoutMs?: number;
  /**
   * `tpm2_create -a` attributes of a new device key. Only tests of the gateway's refusals change
   * it (a key without fixedTPM); the default is what attestation requires.
   */
  readonly deviceKeyAttributes?: string;
}

/** A tpm2-tools command that failed; the message says which and what it printed. */
export class TpmCommandError extends Error {
  constructor(tool: string, detail: string) {
    super(`${tool} failed: ${detail}`);
    this.name = 'TpmCommandError';
  }
}

const DEVICE_KEY_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';

/**
 * The device key in a TPM 2.0, driven through `tpm2-tools` (no native module).
 *
 * Creates, once, an attestation key (restricted ECDSA signing key under the endorsement key) and
 * a non-exportable P-256 device key (`fixedTPM`, `fixedParent`, `sensitiveDataOrigin`) under the
 * owner hierarchy's storage key; keeps their TPM-wrapped blobs in `folder`. Commands run one at a
 * time and transient objects are flushed after each step, so it works on a bare TPM socket
 * (swtpm) as well as through the kernel resource manager.
 */
export class TpmKeyProvider implements HardwareKeyProvider {
  readonly name = 'tpm';
  private queue: Promise<unknown> = Promise.resolve();
  private deviceContextReady = false;

  constructor(private readonly options: TpmKeyProviderOptions) {}

  private get tcti(): string {
    return this.options.tcti ?? DEFAULT_TCTI;
  }

  private file(name: string): string {
    return join(this.options.folder, name);
  }

  /** Runs `work` after every earlier TPM operation: the TPM sees one command sequence at a time. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async tool(tool: string, args: readonly string[]): Promise<string> {
    const result = await this.options.commands.run(tool, [...args, `--tcti=${this.tcti}`], {
      timeoutMs: this.options.timeoutMs ?? 10_000,
    });
    if (result.error) throw new TpmCommandError(tool, `${result.error} (is tpm2-tools installed?)`);
    if (result.exitCode !== 0) {
      throw new TpmCommandError(tool, (result.stderr || result.stdout).trim().split('\n').slice(-2).join(' '));
    }
    return result.stdout;
  }

  /**
   * Flushes transient objects and sessions. The kernel resource manager does this itself when a
   * command's connection closes; a bare TPM socket (swtpm, mssim) keeps them until told.
   */
  private async flush(): Promise<void> {
    if (!/^(swtpm|mssim)\b/.test(this.tcti)) return;
    await this.tool('tpm2_flushcontext', ['-t']);
    await this.tool('tpm2_flushcontext', ['-s']);
  }

  private async exists(name: string): Promise<boolean> {
    return stat(this.file(name)).then(
      () => true,
      () => false,
    );
  }

  async openOrCreate(): Promise<HardwareKeyHandle | undefined> {
    return this.exclusive(async () => {
      await mkdir(this.options.folder, { recursive: true, mode: 0o700 });
      if (!(await this.exists('device.pub')) || !(await this.exists('ak.pub'))) await this.create();
      await this.loadDeviceKey();
      const publicJwk = devicePublicJwk(await readFile(this.file('device.pub')));
      const createdAt = (await stat(this.file('device.pub'))).mtime.toISOString();
      return Object.freeze({
        publicJwk,
        createdAt,
        sign: (input: Uint8Array) => this.sign(input),
        attestor: this.attestor(),
      });
    });
  }

  private async create(): Promise<void> {
    try {
      await this.tool('tpm2_createek', ['-c', this.file('ek.ctx'), '-G', 'rsa', '-u', this.file('ek.pub')]);
      await this.tool(
        'tpm2_createak',
        [
          ['-C', this.file('ek.ctx')],
          ['-c', this.file('ak.ctx')],
          ['-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa'],
          ['-u', this.file('ak.pub'), '-n', this.file('ak.name'), '-r', this.file('ak.priv')],
        ].flat(),
      );
      await this.flush();
      await this.createPrimary();
      await this.flush();
      await this.tool(
        'tpm2_create',
        [
          ['-C', this.file('srk.ctx'), '-G', 'ecc256:ecdsa-sha256', '-g', 'sha256'],
          [
            '-a',
            this.options.deviceKeyAttributes ?? DEVICE_KEY_ATTRIBUTES,
            '-u',
            this.file('device.pub'),
            '-r',
            this.file('device.priv'),
          ],
          [
            '--creation-data',
            this.file('device.cdata'),
            '-d',
            this.file('device.chash'),
            '-t',
            this.file('device.ticket'),
          ],
        ].flat(),
      );
    } finally {
      await this.flush();
    }
  }

  /** The owner hierarchy's storage key; the same template always gives the same key. */
  private async createPrimary(): Promise<void> {
    await this.tool('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', this.file('srk.ctx')]);
  }

  private async loadDeviceKey(): Promise<void> {
    try {
      await this.createPrimary();
      await this.flush();
      await this.tool(
        'tpm2_load',
        [
          ['-C', this.file('srk.ctx'), '-u', this.file('device.pub'), '-r', this.file('device.priv')],
          ['-c', this.file('device.ctx')],
        ].flat(),
      );
      this.deviceContextReady = true;
    } finally {
      await this.flush();
    }
  }

  /** Loads the attestation key under the endorsement key (which needs a PolicySecret session). */
  private async loadAttestationKey(work: string): Promise<void> {
    await this.tool('tpm2_createek', ['-c', this.file('ek.ctx'), '-G', 'rsa', '-u', this.file('ek.pub')]);
    await this.flush();
    await this.endorsementSession(work);
    await this.tool(
      'tpm2_load',
      [
        ['-C', this.file('ek.ctx'), '-P', `session:${join(work, 'session.ctx')}`],
        ['-u', this.file('ak.pub'), '-r', this.file('ak.priv'), '-c', this.file('ak.ctx')],
      ].flat(),
    );
    await this.flush();
  }

  private async endorsementSession(work: string): Promise<void> {
    await this.tool('tpm2_startauthsession', ['--policy-session', '-S', join(work, 'session.ctx')]);
    await this.tool('tpm2_policysecret', ['-S', join(work, 'session.ctx'), '-c', 'e']);
  }

  private sign(input: Uint8Array): Promise<Uint8Array> {
    return this.exclusive(async () => {
      const work = await mkdtemp(join(this.options.folder, 'sign-'));
      try {
        const digest = join(work, 'digest');
        await writeFile(digest, createHash('sha256').update(input).digest());
        const args = ['-c', this.file('device.ctx'), '-g', 'sha256', '-s', 'ecdsa', '-d', '-o', join(work, 'sig')];
        try {
          if (!this.deviceContextReady) await this.loadDeviceKey();
          await this.tool('tpm2_sign', [...args, digest]);
        } catch {
          // The saved context does not survive a TPM restart: load the key again once.
          await this.flush();
          await this.loadDeviceKey();
          await this.tool('tpm2_sign', [...args, digest]);
        }
        return ecdsaSignature(await readFile(join(work, 'sig')));
      } finally {
        await this.flush().catch(() => undefined);
        await rm(work, { recursive: true, force: true });
      }
    });
  }

  private attestor(): KeyAttestor {
    return {
      endorsement: () =>
        this.exclusive(async () => {
          const work = await mkdtemp(join(this.options.folder, 'ek-'));
          try {
            await this.tool('tpm2_nvread', [EK_CERT_NV_INDEX, '-C', 'o', '-o', join(work, 'ek.der')]);
            return {
              ekCertificate: new Uint8Array(await readFile(join(work, 'ek.der'))),
              attestationKeyPublic: new Uint8Array(await readFile(this.file('ak.pub'))),
            };
          } finally {
            await this.flush().catch(() => undefined);
            await rm(work, { recursive: true, force: true });
          }
        }),
      activateAndCertify: (credential, qualifyingData) =>
        this.exclusive(async () => {
          const work = await mkdtemp(join(this.options.folder, 'attest-'));
          try {
            const blob = join(work, 'credential.blob');
            await writeFile(
              blob,
              Buffer.concat([
                Buffer.from([0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1]),
                credential.credentialBlob,
                credential.encryptedSecret,
              ]),
            );
            await this.loadAttestationKey(work);
            await this.endorsementSession(work);
            await this.tool(
              'tpm2_activatecredential',
              [
                ['-c', this.file('ak.ctx'), '-C', this.file('ek.ctx'), '-i', blob, '-o', join(work, 'secret')],
                ['-P', `session:${join(work, 'session.ctx')}`],
              ].flat(),
            );
            await this.flush();
            await this.createPrimary();
            await this.flush();
            await this.tool(
              'tpm2_load',
              [
                ['-C', this.file('srk.ctx'), '-u', this.file('device.pub'), '-r', this.file('device.priv')],
                ['-c', this.file('device.ctx')],
              ].flat(),
            );
            await this.flush();
            // TPM2_CertifyCreation: the AK signs that this TPM created the device key, over the nonce.
            await this.tool(
              'tpm2_certifycreation',
              [
                ['-C', this.file('ak.ctx'), '-c', this.file('device.ctx'), '-g', 'sha256', '-s', 'ecdsa'],
                ['-d', this.file('device.chash'), '-t', this.file('device.ticket')],
                ['-q', Buffer.from(qualifyingData).toString('hex')],
                ['--attestation', join(work, 'attest'), '-o', join(work, 'attest.sig')],
              ].flat(),
            );
            return {
              secret: new Uint8Array(await readFile(join(work, 'secret'))),
              devicePublic: new Uint8Array(await readFile(this.file('device.pub'))),
              certifyInfo: new Uint8Array(await readFile(join(work, 'attest'))),
              certifySignature: new Uint8Array(await readFile(join(work, 'attest.sig'))),
            };
          } finally {
            await this.flush().catch(() => undefined);
            await rm(work, { recursive: true, force: true });
          }
        }),
    };
  }
}

/** Reads the P-256 point out of a TPM2B_PUBLIC written by `tpm2_create -u`. */
export function devicePublicJwk(tpm2bPublic: Uint8Array): DevicePublicJwk {
  const bytes = Buffer.from(tpm2bPublic);
  let offset = 2; // TPM2B size
  const type = bytes.readUInt16BE(offset);
  if (type !== 0x0023) throw new Error('The TPM device key is not an ECC key');
  offset += 2 + 2 + 4; // type, nameAlg, objectAttributes
  offset += 2 + bytes.readUInt16BE(offset); // authPolicy
  const symmetric = bytes.readUInt16BE(offset);
  offset += symmetric === 0x0010 ? 2 : 6;
  const scheme = bytes.readUInt16BE(offset);
  offset += scheme === 0x0010 ? 2 : 4;
  const curve = bytes.readUInt16BE(offset);
  if (curve !== 0x0003) throw new Error('The TPM device key is not on P-256');
  offset += 2;
  const kdf = bytes.readUInt16BE(offset);
  offset += kdf === 0x0010 ? 2 : 4;
  const xLength = bytes.readUInt16BE(offset);
  const x = bytes.subarray(offset + 2, offset + 2 + xLength);
  offset += 2 + xLength;
  const yLength = bytes.readUInt16BE(offset);
  const y = bytes.subarray(offset + 2, offset + 2 + yLength);
  if (x.length !== 32 || y.length !== 32) throw new Error('The TPM device key point is malformed');
  return Object.freeze({ kty: 'EC', crv: 'P-256', x: x.toString('base64url'), y: y.toString('base64url') });
}

/** Turns a TPMT_SIGNATURE (ECDSA) into the JOSE form r‖s. */
export function ecdsaSignature(tpmtSignature: Uint8Array): Uint8Array {
  const bytes = Buffer.from(tpmtSignature);
  if (bytes.readUInt16BE(0) !== 0x0018) throw new Error('The TPM signature is not ECDSA');
  const rLength = bytes.readUInt16BE(4);
  const r = bytes.subarray(6, 6 + rLength);
  const sLength = bytes.readUInt16BE(6 + rLength);
  const s = bytes.subarray(8 + rLength, 8 + rLength + sLength);
  const out = new Uint8Array(64);
  out.set(r, 32 - r.length);
  out.set(s, 64 - s.length);
  return out;
}
