import { describe, expect, it } from 'vitest';
import { installFailureLine, planElectron } from './electron-binary';

describe('planElectron', () => {
  it('uses an installed binary', () => {
    expect(planElectron('/x/electron', {})).toEqual({ kind: 'use', binary: '/x/electron' });
  });

  it('runs Electron’s installer when the binary is missing', () => {
    expect(planElectron(undefined, {})).toEqual({ kind: 'install' });
    expect(planElectron(undefined, { ELECTRON_SKIP_BINARY_DOWNLOAD: '0' })).toEqual({ kind: 'install' });
  });

  it('opens the harness without downloading when the person asked for no download, and says so', () => {
    const plan = planElectron(undefined, { ELECTRON_SKIP_BINARY_DOWNLOAD: '1' });
    expect(plan).toMatchObject({ kind: 'harness' });
    expect(plan.kind === 'harness' && plan.line).toMatch(/ELECTRON_SKIP_BINARY_DOWNLOAD is set/);
  });
});

describe('installFailureLine', () => {
  it('names the download and its real cause on one line, without blaming the machine', () => {
    const output = [
      'RequestError: getaddrinfo ENOTFOUND github.com',
      '    at ClientRequest.<anonymous> (/n/got/dist/source/core/index.js:970:111)',
      '    at Object.onceWrapper (node:events:634:26)',
    ].join('\n');
    const line = installFailureLine('45.5.0', output, 1);
    expect(line).toContain('Electron 45.5.0 could not be downloaded (RequestError: getaddrinfo ENOTFOUND github.com)');
    expect(line).toContain('ELECTRON_MIRROR');
    expect(line).not.toMatch(/this machine|\n/);
  });

  it('still says something when the installer printed nothing', () => {
    expect(installFailureLine('45.5.0', '', 7)).toContain('(the installer exited with 7)');
  });
});
