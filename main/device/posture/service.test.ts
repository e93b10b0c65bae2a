import { describe, expect, it } from 'vitest';
import { PostureCheck, PostureCheckId } from '../../../shared/device';
import { NodeCommandRunner } from '../../node/adapters';
import type { CommandRunner } from '../../platform';
import { compliantLinuxDevice, createRecordedPostureService, noncompliantLinuxDevice } from '../fixtures/devices';
import { recorded } from '../fixtures/recordings';
import { darwinCommands } from './darwin';
import { commandKey, RecordedCommandRunner } from './recorded';
import { PostureService } from './service';
import { win32Commands } from './win32';

const launch = { packaged: true, argv: [], env: {} };
const byId = (checks: readonly PostureCheck[]) => Object.fromEntries(checks.map((c) => [c.id, c]));

describe('PostureService', () => {
  it('answers every check id once, in a fixed order, for each platform', async () => {
    for (const platform of ['linux', 'darwin', 'win32', 'freebsd'] as const) {
      const service = new PostureService({
        platform,
        commands: new RecordedCommandRunner({}),
        launch,
        trustedPolicyFilePresent: false,
      });
      const checks = await service.check();
      expect(checks.map((c) => c.id)).toEqual(PostureCheckId.options);
    }
  });

  it('never passes a platform check when no tool is installed', async () => {
    for (const platform of ['linux', 'darwin', 'win32'] as const) {
      const service = new PostureService({
        platform,
        commands: new RecordedCommandRunner({}),
        launch,
        trustedPolicyFilePresent: false,
      });
      const checks = await service.check();
      const platformChecks = checks.filter((c) => c.id !== 'app-integrity' && c.id !== 'managed');
      expect(
        platformChecks.every((c) => c.status === 'unknown'),
        platform,
      ).toBe(true);
      expect(byId(checks).managed?.status).not.toBe('pass');
    }
  });

  it('turns a runner that throws into unknown checks instead of failing the run', async () => {
    const throwing: CommandRunner = { run: () => Promise.reject(new Error('spawn EPERM')) };
    const checks = await new PostureService({
      platform: 'darwin',
      commands: throwing,
      launch,
      trustedPolicyFilePresent: false,
    }).check();
    expect(checks.filter((c) => c.id !== 'app-integrity').every((c) => c.status === 'unknown')).toBe(true);
    expect(byId(checks)['disk-encryption']?.detail).toContain('spawn EPERM');
  });

  it('reads the minimum versions on every run', async () => {
    let minimums: Record<string, string> = { darwin: '12.0' };
    const service = new PostureService({
      platform: 'darwin',
      commands: new RecordedCommandRunner({
        [commandKey(...darwinCommands.swVers)]: recorded('darwin/sw_vers-12.7.txt'),
      }),
      launch,
      trustedPolicyFilePresent: false,
      minOsVersions: () => minimums,
    });
    expect(byId(await service.check())['os-version']?.status).toBe('pass');
    minimums = { darwin: '14.0' };
    expect(byId(await service.check())['os-version']?.status).toBe('fail');
  });

  it('checks a recorded compliant Windows laptop', async () => {
    const commands = win32Commands('C:');
    const notFound = {
      exitCode: 1,
      stdout: '',
      stderr: 'ERROR: The system was unable to find the specified registry key or value.\r\n',
    };
    const runner = new RecordedCommandRunner({
      [commandKey(...commands.ver)]: recorded('win32/ver-11.txt'),
      [commandKey(...commands.manageBde)]: recorded('win32/manage-bde-access-denied.txt', -1),
      [commandKey(...commands.bitlockerProperty)]: recorded('win32/bitlocker-property-on.txt'),
      [commandKey(...commands.dsregcmd)]: recorded('win32/dsregcmd-entra-joined.txt'),
      [commandKey(...commands.firewall)]: recorded('win32/netsh-all-on.txt'),
      [commandKey(...commands.inactivityPolicy)]: recorded('win32/reg-inactivity-900.txt'),
      [commandKey(...commands.desktop)]: notFound,
      [commandKey(...commands.desktopPolicy)]: notFound,
    });
    const checks = await new PostureService({
      platform: 'win32',
      commands: runner,
      launch: { ...launch, env: { SystemDrive: 'C:' } },
      trustedPolicyFilePresent: false,
      minOsVersions: () => ({ win32: '10.0.19045' }),
    }).check();
    expect(checks.map((c) => [c.id, c.status])).toEqual(PostureCheckId.options.map((id) => [id, 'pass']));
    expect(runner.calls).toContain(commandKey(...commands.bitlockerProperty));
  });

  it('checks the recorded compliant Linux device as passing everything', async () => {
    const checks = await createRecordedPostureService(compliantLinuxDevice, () => ({ ubuntu: '22.04' })).check();
    expect(checks.filter((c) => c.status !== 'pass')).toEqual([]);
  });

  it('checks the recorded non-compliant Linux device as failing disk encryption and firewall only', async () => {
    const checks = await createRecordedPostureService(noncompliantLinuxDevice, () => ({ debian: '12' })).check();
    const notPassing = checks.filter((c) => c.status !== 'pass');
    expect(notPassing.map((c) => [c.id, c.status])).toEqual([
      ['disk-encryption', 'fail'],
      ['firewall', 'fail'],
    ]);
    expect(notPassing.every((c) => c.remediation.length > 0)).toBe(true);
  });

  it('runs the real Linux checks on this machine and returns well-formed results', async () => {
    if (process.platform !== 'linux') return; // the real commands exist only on Linux
    const started = performance.now();
    const checks = await new PostureService({
      platform: 'linux',
      commands: new NodeCommandRunner(),
      launch: { packaged: false, argv: process.argv, env: process.env },
      trustedPolicyFilePresent: false,
      minOsVersions: () => ({ linux: '4.0' }),
    }).check();
    const elapsed = performance.now() - started;
    expect(checks.map((c) => PostureCheck.parse(c))).toEqual(checks);
    expect(checks.map((c) => c.id)).toEqual(PostureCheckId.options);
    for (const check of checks) {
      expect(check.detail.length).toBeGreaterThan(10);
      if (check.status !== 'pass') expect(check.remediation.length).toBeGreaterThan(10);
    }
    expect(byId(checks)['app-integrity']?.status).toBe('fail');
    expect(elapsed).toBeLessThan(15_000);
    console.info(
      `real Linux posture in ${elapsed.toFixed(0)} ms:\n${checks.map((c) => `  ${c.id}: ${c.status} — ${c.detail}`).join('\n')}`,
    );
  });
});
