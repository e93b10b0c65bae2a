import { describe, expect, it } from 'vitest';
import { windowsSigningPlan } from '../build/sign-windows.mjs';

const context = { hasCertificate: false, timestampServer: 'http://timestamp.example' };
const azure = {
  AZURE_TRUSTED_SIGNING_DLIB: 'C:\\tools\\Azure.CodeSigning.Dlib.dll',
  AZURE_TRUSTED_SIGNING_METADATA: 'C:\\tools\\metadata.json',
  AZURE_TENANT_ID: 't',
  AZURE_CLIENT_ID: 'c',
  AZURE_CLIENT_SECRET: 's',
};

describe('windowsSigningPlan (build/sign-windows.mjs)', () => {
  it('runs the HSM command with the file in place of {file}', () => {
    const plan = windowsSigningPlan(
      { CLEARANCE_WIN_SIGN_COMMAND: 'signtool sign /csp "HSM" /kc key {file}' },
      'C:\\out\\Clearance.exe',
      context,
    );
    expect(plan).toEqual({ kind: 'command', command: 'signtool sign /csp "HSM" /kc key "C:\\out\\Clearance.exe"' });
  });

  it('refuses an HSM command without {file}', () => {
    expect(() => windowsSigningPlan({ CLEARANCE_WIN_SIGN_COMMAND: 'signtool sign' }, 'a.exe', context)).toThrow(
      '{file}',
    );
  });

  it('signs through the Azure Trusted Signing dlib with a timestamp', () => {
    const plan = windowsSigningPlan(azure, 'a.exe', context);
    expect(plan.kind).toBe('signtool');
    expect(plan.kind === 'signtool' && plan.args).toEqual([
      'sign',
      '/v',
      '/fd',
      'sha256',
      '/tr',
      'http://timestamp.example',
      '/td',
      'sha256',
      '/dlib',
      azure.AZURE_TRUSTED_SIGNING_DLIB,
      '/dmdf',
      azure.AZURE_TRUSTED_SIGNING_METADATA,
      'a.exe',
    ]);
  });

  it('names the Azure credentials that are missing', () => {
    const { AZURE_CLIENT_SECRET: _secret, ...partial } = azure;
    expect(() => windowsSigningPlan(partial, 'a.exe', context)).toThrow('AZURE_CLIENT_SECRET');
    expect(() => windowsSigningPlan({ AZURE_TRUSTED_SIGNING_DLIB: 'x' }, 'a.exe', context)).toThrow('both');
  });

  it('uses electron-builder’s certificate arguments when a certificate is configured, else leaves the file unsigned', () => {
    expect(
      windowsSigningPlan({}, 'a.exe', { ...context, hasCertificate: true, certificateArgs: ['sign', '/f', 'c.pfx'] }),
    ).toEqual({
      kind: 'signtool',
      via: 'certificate',
      args: ['sign', '/f', 'c.pfx'],
    });
    expect(windowsSigningPlan({}, 'a.exe', context).kind).toBe('unsigned');
  });
});
