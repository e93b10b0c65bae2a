import { app, dialog, net, safeStorage, shell, type BrowserWindow } from 'electron';
import { writeFile } from 'node:fs/promises';
import { NodeCommandRunner } from '../node/adapters';
import type { Adapters, SecretStore } from '../platform';
import { secretBackendKind } from './secretBackend';

/** `safeStorage` as a `SecretStore`: the key lives in the OS keychain / DPAPI / libsecret. */
export class SafeStorageSecretStore implements SecretStore {
  isAvailable(): boolean {
    return safeStorage.isEncryptionAvailable();
  }

  backend(): 'os' | 'basic_text' | 'unknown' {
    return secretBackendKind(process.platform, () => safeStorage.getSelectedStorageBackend());
  }

  encrypt(plain: Uint8Array): Uint8Array {
    return safeStorage.encryptString(Buffer.from(plain).toString('base64'));
  }

  decrypt(cipher: Uint8Array): Uint8Array {
    return Buffer.from(safeStorage.decryptString(Buffer.from(cipher)), 'base64');
  }
}

/**
 * The Electron adapters the composition root is built from.
 */
export function createElectronAdapters(getWindow: () => BrowserWindow | undefined): Adapters {
  return {
    secrets: new SafeStorageSecretStore(),
    browser: { open: (url) => shell.openExternal(url) },
    http: (input, init) => net.fetch(typeof input === 'string' ? input : input.toString(), init),
    paths: { userData: app.getPath('userData'), logs: app.getPath('logs') },
    commands: new NodeCommandRunner(),
    files: {
      async save(suggestedName, content) {
        const window = getWindow();
        const options = { defaultPath: suggestedName };
        const result = window ? await dialog.showSaveDialog(window, options) : await dialog.showSaveDialog(options);
        if (result.canceled || !result.filePath) return {};
        await writeFile(result.filePath, content, 'utf8');
        return { savedTo: result.filePath };
      },
    },
    clock: { now: () => Date.now() },
  };
}
