import { createPrivateKey, createPublicKey, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint } from 'jose';
import { z } from 'zod';
import type { DeviceAssurance } from '../../shared/device';
import type { IpcErrorCode } from '../../shared/ipc';
import { writeFileAtomic } from '../storage/atomicFile';
import type { AppPaths, Clock, SecretStore } from '../platform';

/** The public half of a P-256 device key as a JWK (RFC 7517), safe to send anywhere. */
export interface DevicePublicJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

/**
 * The installation's device key as the rest of main uses it: public facts and a signing function.
 *
 * The private key is never a property, so neither JSON nor an IPC answer can carry it.
 * `deviceId` is the RFC 7638 thumbprint, so a device cannot claim another device's id.
 */
export interface DeviceKey {
  readonly deviceId: string;
  readonly thumbprint: string;
  readonly publicJwk: DevicePublicJwk;
  readonly assurance: DeviceAssurance;
  readonly createdAt: string;
  /** Signs `signingInput` with ES256 and returns the JOSE signature (r‖s, 64 bytes). */
  sign(signingInput: Uint8Array): Promise<Uint8Array>;
  /** How the gateway can verify that hardware holds the key; absent for software keys. */
  readonly attestor?: KeyAttestor;
}

/**
 * TPM 2.0 key attestation of a hardware device key (docs/protocol.md, "TPM key attestation").
 *
 * All values are the TPM's own binary structures, passed through to the gateway unread.
 */
export interface KeyAttestor {
  /** The endorsement key certificate (DER) and the attestation key's TPM2B_PUBLIC. */
  endorsement(): Promise<{ readonly ekCertificate: Uint8Array; readonly attestationKeyPublic: Uint8Array }>;
  /**
   * Activates the gateway's credential (TPM2_ActivateCredential) and certifies the device key with the
   * attestation key over `qualifyingData` (TPM2_Certify).
   */
  activateAndCertify(
    credential: { readonly credentialBlob: Uint8Array; readonly encryptedSecret: Uint8Array },
    qualifyingData: Uint8Array,
  ): Promise<{
    readonly secret: Uint8Array;
    readonly devicePublic: Uint8Array;
    readonly certifyInfo: Uint8Array;
    readonly certifySignature: Uint8Array;
  }>;
}

/** A key held by an OS-backed store: only its public half and a way to sign ever reach Clearance. */
export interface HardwareKeyHandle {
  readonly publicJwk: DevicePublicJwk;
  readonly createdAt: string;
  sign(signingInput: Uint8Array): Promise<Uint8Array>;
  /** Present when the store can prove to the gateway that it holds the key (a TPM). */
  readonly attestor?: KeyAttestor;
}

/**
 * An OS-backed key store (TPM through CNG on Windows, the Secure Enclave on macOS, a TPM on Linux).
 *
 * The app cannot load native modules, so a real provider would talk to a small signed helper binary
 * shipped with the installer (over stdin/stdout), which keeps the non-exportable key and signs on request.
 */
export interface HardwareKeyProvider {
  /** Names the store for diagnostics (`tpm`, `secure-enclave`, `none`). */
  readonly name: string;
  /** Opens the installation's key, creating it the first time; `undefined` when no hardware store can be used. */
  openOrCreate(label: string): Promise<HardwareKeyHandle | undefined>;
}

/** The provider for installations without a hardware helper: never offers a key, so a software key is used. */
export class NullHardwareKeyProvider implements HardwareKeyProvider {
  readonly name = 'none';

  // Stryker disable next-line BlockStatement: an async function without a body resolves to undefined as well.
  async openOrCreate(): Promise<undefined> {
    return undefined;
  }
}

/** Why the device key cannot be used. */
export type DeviceKeyProblem = 'secret-store-unavailable' | 'secret-store-insecure';

/**
 * The device key cannot be created or opened; `message` says what the person can do about it.
 */
export class DeviceKeyError extends Error {
  readonly code: IpcErrorCode = 'DEVICE_BLOCKED';

  constructor(
    readonly problem: DeviceKeyProblem,
    message: string,
  ) {
    super(message);
    this.name = 'DeviceKeyError';
  }
}

const KEY_FILE = 'device-key.json';
const KEY_LABEL = 'clearance-device-key';

const Base64Url = z.string().regex(/^[A-Za-z0-9_-]+$/);

const StoredKey = z.object({
  format: z.literal('clearance-device-key'),
  version: z.literal(1),
  assurance: z.literal('software'),
  createdAt: z.string(),
  publicJwk: z.object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: Base64Url, y: Base64Url }),
  /** PKCS#8 DER of the private key, encrypted by the SecretStore, base64. */
  encryptedPrivateKey: z.string().min(1),
});
type StoredKey = z.infer<typeof StoredKey>;

/** What {@link DeviceKeyStore} needs. */
export interface DeviceKeyStoreOptions {
  readonly paths: AppPaths;
  readonly secrets: SecretStore;
  readonly hardware?: HardwareKeyProvider;
  readonly clock?: Clock;
  readonly log?: (message: string, error?: unknown) => void;
}

/**
 * Creates the installation's P-256 device key once and opens it on later starts.
 *
 * A hardware provider's key is preferred (`assurance: hardware`). Otherwise the key is generated
 * in software and its private part is written only after the `SecretStore` encrypts it
 * (`assurance: software`); without a real secret store it refuses rather than write it in the clear.
 * A key file that cannot be decrypted (the OS keyring was reset, the profile was copied from
 * another machine) is set aside and a new key made: this installation then attests as a new device.
 */
export class DeviceKeyStore {
  private loading: Promise<DeviceKey> | undefined;
  private key: DeviceKey | undefined;

  constructor(private readonly options: DeviceKeyStoreOptions) {}

  /** The key once {@link load} has succeeded. */
  get current(): DeviceKey | undefined {
    return this.key;
  }

  /** The file the software key lives in. */
  get filePath(): string {
    return join(this.options.paths.userData, KEY_FILE);
  }

  /**
   * Opens the device key, creating it on first use; concurrent callers share one attempt.
   *
   * @throws {DeviceKeyError} when no secret store can protect a software key.
   */
  load(): Promise<DeviceKey> {
    if (this.key) return Promise.resolve(this.key);
    this.loading ??= this.open().then(
      (key) => {
        this.key = key;
        return key;
      },
      (error: unknown) => {
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }

  private log(message: string, error?: unknown): void {
    (this.options.log ?? console.warn)(message, error);
  }

  private now(): string {
    return new Date(this.options.clock?.now() ?? Date.now()).toISOString();
  }

  private async open(): Promise<DeviceKey> {
    const hardware = await this.openHardware();
    if (hardware) return hardware;
    this.requireSecretStore();
    const stored = await this.readStored();
    if (stored) {
      const opened = await this.openStored(stored);
      if (opened) return opened;
    }
    return this.create();
  }

  private async openHardware(): Promise<DeviceKey | undefined> {
    const provider = this.options.hardware;
    if (!provider) return undefined;
    try {
      const handle = await provider.openOrCreate(KEY_LABEL);
      if (!handle) return undefined;
      return await deviceKeyFrom(
        publicJwkOf(handle.publicJwk),
        'hardware',
        handle.createdAt,
        (input) => handle.sign(input),
        handle.attestor,
      );
    } catch (error) {
      this.log(`The hardware key store (${provider.name}) could not be used; falling back to a software key`, error);
      return undefined;
    }
  }

  private requireSecretStore(): void {
    const { secrets } = this.options;
    if (!secrets.isAvailable()) {
      throw new DeviceKeyError(
        'secret-store-unavailable',
        'Clearance cannot protect this device’s key because the operating system’s secret store is not available. ' +
          'On Linux, install and unlock a keyring (GNOME Keyring or KWallet), then start Clearance again.',
      );
    }
    if (secrets.backend() === 'basic_text') {
      throw new DeviceKeyError(
        'secret-store-insecure',
        'Clearance cannot protect this device’s key: the only secret store available uses a fixed, public key (basic_text). ' +
          'Install and unlock GNOME Keyring or KWallet, then start Clearance again.',
      );
    }
  }

  private async readStored(): Promise<StoredKey | undefined> {
    let text: string;
    try {
      text = await readFile(this.filePath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      return StoredKey.parse(JSON.parse(text));
    } catch (error) {
      await this.setAside('is not a device key file Clearance wrote', error);
      return undefined;
    }
  }

  private async openStored(stored: StoredKey): Promise<DeviceKey | undefined> {
    let privateKey: KeyObject;
    try {
      const der = this.options.secrets.decrypt(Buffer.from(stored.encryptedPrivateKey, 'base64'));
      privateKey = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
    } catch (error) {
      await this.setAside(
        'could not be decrypted (the OS keyring changed or the profile came from another machine)',
        error,
      );
      return undefined;
    }
    const derived = publicJwkOf(createPublicKey(privateKey).export({ format: 'jwk' }));
    if (derived.x !== stored.publicJwk.x || derived.y !== stored.publicJwk.y) {
      await this.setAside('holds a public key that does not match its private key');
      return undefined;
    }
    return deviceKeyFrom(derived, 'software', stored.createdAt, softwareSigner(privateKey));
  }

  private async setAside(why: string, error?: unknown): Promise<void> {
    const aside = `${this.filePath}.unreadable-${this.options.clock?.now() ?? Date.now()}`;
    this.log(`The device key file ${why}; it was moved to ${aside} and a new device key is being created`, error);
    await rename(this.filePath, aside);
  }

  private async create(): Promise<DeviceKey> {
    const { privateKey, publicKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
    const publicJwk = publicJwkOf(publicKey.export({ format: 'jwk' }));
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    const createdAt = this.now();
    const stored: StoredKey = {
      format: 'clearance-device-key',
      version: 1,
      assurance: 'software',
      createdAt,
      publicJwk,
      encryptedPrivateKey: Buffer.from(this.options.secrets.encrypt(der)).toString('base64'),
    };
    der.fill(0);
    await mkdir(this.options.paths.userData, { recursive: true });
    await writeFileAtomic(this.filePath, Buffer.from(`${JSON.stringify(stored, null, 2)}\n`));
    return deviceKeyFrom(publicJwk, 'software', createdAt, softwareSigner(privateKey));
  }
}

function publicJwkOf(jwk: { kty?: unknown; crv?: unknown; x?: unknown; y?: unknown }): DevicePublicJwk {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new Error('The device key is not a P-256 key');
  }
  return Object.freeze({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y });
}

function softwareSigner(privateKey: KeyObject): (input: Uint8Array) => Promise<Uint8Array> {
  return async (input) => new Uint8Array(sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
}

async function deviceKeyFrom(
  publicJwk: DevicePublicJwk,
  assurance: DeviceAssurance,
  createdAt: string,
  signer: (input: Uint8Array) => Promise<Uint8Array>,
  attestor?: KeyAttestor,
): Promise<DeviceKey> {
  const thumbprint = await calculateJwkThumbprint(publicJwk, 'sha256');
  const facts = { deviceId: thumbprint, thumbprint, publicJwk, assurance, createdAt };
  return Object.freeze({
    ...facts,
    sign: signer,
    ...(attestor ? { attestor } : {}),
    toJSON: () => facts,
  });
}
