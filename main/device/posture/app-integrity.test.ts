import { describe, expect, it } from 'vitest';
import { checkAppIntegrity } from './app-integrity';

const installed = {
  packaged: true,
  argv: ['/opt/Clearance/clearance', '--enable-features=WaylandWindowDecorations'],
  env: {},
};

describe('app-integrity', () => {
  it('passes the installed app started plainly', () => {
    expect(checkAppIntegrity(installed).status).toBe('pass');
  });

  it('fails a development build', () => {
    const check = checkAppIntegrity({ ...installed, packaged: false });
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('development build');
  });

  it.each([
    '--inspect',
    '--inspect-brk=9229',
    '--remote-debugging-port=9222',
    '--remote-debugging-pipe',
    '--js-flags=--allow-natives-syntax',
  ])('fails when started with %s', (flag) => {
    const check = checkAppIntegrity({ ...installed, argv: [...installed.argv, flag] });
    expect(check.status).toBe('fail');
    expect(check.detail).toContain(flag.split('=')[0]);
    expect(check.remediation).not.toBe('');
  });

  it.each([{ ELECTRON_RUN_AS_NODE: '1' }, { NODE_OPTIONS: '--require /tmp/hook.js' }])(
    'fails with %o in the environment',
    (env) => {
      const check = checkAppIntegrity({ ...installed, env });
      expect(check.status).toBe('fail');
      expect(check.detail).toContain(Object.keys(env)[0]);
    },
  );

  it('ignores debugging variables that are set but empty', () => {
    expect(checkAppIntegrity({ ...installed, env: { ELECTRON_RUN_AS_NODE: '' } }).status).toBe('pass');
  });

  it('lists every problem at once', () => {
    const check = checkAppIntegrity({ packaged: false, argv: ['--inspect'], env: { ELECTRON_RUN_AS_NODE: '1' } });
    expect(check.detail).toMatch(/development build.*--inspect.*ELECTRON_RUN_AS_NODE/);
  });
});

describe('app-integrity with the fuses read back', () => {
  const shipped = {
    runAsNode: 'off',
    enableCookieEncryption: 'on',
    enableNodeOptionsEnvironmentVariable: 'off',
    enableNodeCliInspectArguments: 'off',
    enableEmbeddedAsarIntegrityValidation: 'on',
    onlyLoadAppFromAsar: 'on',
    loadBrowserProcessSpecificV8Snapshot: 'off',
    grantFileProtocolExtraPrivileges: 'off',
  } as const;

  it('passes and says what the fuses enforce when they are as shipped', () => {
    const check = checkAppIntegrity({ ...installed, fuses: { readable: true, fuses: shipped } });
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('fuses refuse run-as-Node');
  });

  it('fails naming the fuse when one was flipped back', () => {
    const check = checkAppIntegrity({
      ...installed,
      fuses: { readable: true, fuses: { ...shipped, runAsNode: 'on' } },
    });
    expect(check.status).toBe('fail');
    expect(check.detail).toContain('runAsNode is on, not off');
    expect(check.remediation).toContain('Reinstall');
  });

  it('claims nothing about fuses it could not read', () => {
    const check = checkAppIntegrity({ ...installed, fuses: { readable: false, reason: 'no fuse wire in /opt/x' } });
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('fuses were not checked (no fuse wire in /opt/x)');
    expect(check.detail).not.toContain('integrity-checked');
    expect(checkAppIntegrity(installed).detail).toContain('fuses were not checked');
  });
});
