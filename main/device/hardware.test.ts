import { describe, expect, it } from 'vitest';
import { ManagedConfig } from '../config/schema';
import type { CommandRunner } from '../platform';
import { hardwareKeyProviderFor, TPM_RESOURCE_MANAGER } from './hardware';

const commands: CommandRunner = {
  run: async () => ({ exitCode: 1, stdout: '', stderr: 'not in this test' }),
};

describe('hardwareKeyProviderFor', () => {
  it('uses the TPM on Linux when the kernel resource manager exists', () => {
    const looked: string[] = [];
    const provider = hardwareKeyProviderFor({
      platform: 'linux',
      commands,
      userData: '/tmp/profile',
      exists: (path) => {
        looked.push(path);
        return path === TPM_RESOURCE_MANAGER;
      },
    });
    expect(provider.name).toBe('tpm');
    expect(looked).toEqual(['/dev/tpmrm0']);
  });

  it('uses no hardware store on Linux without a TPM, and none on Windows or macOS until the helper exists', () => {
    const none = { commands, userData: '/tmp/profile', exists: () => false };
    expect(hardwareKeyProviderFor({ ...none, platform: 'linux' }).name).toBe('none');
    expect(hardwareKeyProviderFor({ ...none, platform: 'win32', exists: () => true }).name).toBe('none');
    expect(hardwareKeyProviderFor({ ...none, platform: 'darwin', exists: () => true }).name).toBe('none');
  });

  it('uses a given TCTI even without /dev/tpmrm0', () => {
    const provider = hardwareKeyProviderFor({
      platform: 'linux',
      commands,
      userData: '/tmp/profile',
      tcti: 'swtpm:host=127.0.0.1,port=2321',
      exists: () => false,
    });
    expect(provider.name).toBe('tpm');
  });

  it("takes the TCTI from IT's managed tpmTcti, which must be a tpm2-tools TCTI", () => {
    for (const tcti of ['device:/dev/tpmrm0', 'tabrmd', 'tabrmd:bus_type=system']) {
      expect(ManagedConfig.safeParse({ tpmTcti: tcti }).success).toBe(true);
    }
    for (const tcti of ['', '/dev/tpmrm0', 'device:/dev/tpmrm0 --help', 'cmd:$(reboot)', 'x'.repeat(201)]) {
      expect(ManagedConfig.safeParse({ tpmTcti: tcti }).success).toBe(false);
    }
  });
});
