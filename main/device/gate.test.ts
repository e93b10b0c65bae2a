import { createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PostureCheck, PostureCheckId } from '../../shared/device';
import { DeviceStatus } from '../../shared/ipc';
import { MemorySecretStore } from '../node/adapters';
import { compliantLinuxDevice, createRecordedPostureService, noncompliantLinuxDevice } from './fixtures/devices';
import { DeviceGate, evaluateDeviceGate } from './gate';
import { DeviceKeyError, DeviceKeyStore } from './key';

const clock = { now: () => Date.parse('2026-11-26T10:00:00Z') };
const key = { thumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs', assurance: 'software' as const };
const check = (id: PostureCheckId, status: PostureCheck['status']): PostureCheck => ({
  id,
  status,
  detail: `${id} is ${status}`,
  remediation: status === 'pass' ? '' : `fix ${id}`,
});

describe('evaluateDeviceGate', () => {
  it('passes when every required check passes, whatever the others say', () => {
    const checks = [check('disk-encryption', 'pass'), check('firewall', 'pass'), check('managed', 'fail')];
    expect(evaluateDeviceGate(['disk-encryption', 'firewall'], checks)).toEqual({ gate: 'pass', blocking: [] });
  });

  it('blocks when a required check is unknown: unknown is never a pass', () => {
    const checks = [check('disk-encryption', 'pass'), check('firewall', 'unknown')];
    expect(evaluateDeviceGate(['disk-encryption', 'firewall'], checks)).toEqual({
      gate: 'blocked',
      blocking: ['firewall'],
    });
  });

  it('blocks when a required check failed or is missing from the report', () => {
    const checks = [check('disk-encryption', 'fail')];
    expect(evaluateDeviceGate(['disk-encryption', 'screen-lock'], checks)).toEqual({
      gate: 'blocked',
      blocking: ['disk-encryption', 'screen-lock'],
    });
  });

  it('limits instead of blocking when discovery scopes the gate to models', () => {
    const checks = [check('disk-encryption', 'fail'), check('firewall', 'unknown')];
    expect(evaluateDeviceGate(['disk-encryption', 'firewall', 'screen-lock'], checks, 'models')).toEqual({
      gate: 'limited',
      blocking: ['disk-encryption', 'firewall', 'screen-lock'],
    });
  });

  it('keeps the full gate with scope app or no scope, and passes a compliant device whatever the scope', () => {
    const failing = [check('firewall', 'fail')];
    expect(evaluateDeviceGate(['firewall'], failing, 'app').gate).toBe('blocked');
    expect(evaluateDeviceGate(['firewall'], failing, undefined).gate).toBe('blocked');
    const passing = [check('firewall', 'pass')];
    expect(evaluateDeviceGate(['firewall'], passing, 'models')).toEqual({ gate: 'pass', blocking: [] });
    expect(evaluateDeviceGate(undefined, failing, 'models').gate).toBe('unknown');
  });

  it('is unknown until both the required list and the checks are known', () => {
    expect(evaluateDeviceGate(undefined, [check('firewall', 'pass')]).gate).toBe('unknown');
    expect(evaluateDeviceGate(['firewall'], undefined).gate).toBe('unknown');
    expect(evaluateDeviceGate([], []).gate).toBe('pass');
  });
});

describe('DeviceGate', () => {
  let folder: string | undefined;
  afterEach(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
    folder = undefined;
  });

  const required: PostureCheckId[] = ['os-version', 'disk-encryption', 'screen-lock', 'firewall'];

  it('starts unknown, then blocks the recorded non-compliant device and lists every check with its fix', async () => {
    const posture = createRecordedPostureService(noncompliantLinuxDevice);
    const gate = new DeviceGate({
      posture: () => posture.check(),
      deviceKey: async () => key,
      requiredChecks: () => required,
      clock,
    });
    expect(gate.status().gate).toBe('unknown');
    const status = DeviceStatus.parse(await gate.recheck());
    expect(status.gate).toBe('blocked');
    expect(status.checks).toHaveLength(6);
    const failing = status.checks.filter((c) => required.includes(c.id) && c.status !== 'pass');
    expect(failing.map((c) => c.id)).toEqual(['disk-encryption', 'firewall']);
    expect(failing.every((c) => c.remediation.length > 20)).toBe(true);
    expect(status.checkedAt).toBe('2026-11-26T10:00:00.000Z');
    expect(status.thumbprint).toBe(key.thumbprint);
  });

  it('limits the recorded non-compliant device under scope models, yet blocks it on an enrolment refusal or a key problem', async () => {
    const posture = createRecordedPostureService(noncompliantLinuxDevice);
    let scope: 'app' | 'models' | undefined = 'models';
    const gate = new DeviceGate({
      posture: () => posture.check(),
      deviceKey: async () => key,
      requiredChecks: () => required,
      scope: () => scope,
      clock,
    });
    expect(DeviceStatus.parse(await gate.recheck()).gate).toBe('limited');
    gate.setEnrolmentRefusal({ reason: 'DEVICE_ENROLMENT_PENDING', message: 'IT has been asked to approve it.' });
    expect(gate.status().gate).toBe('blocked');
    expect((await gate.recheck()).gate).toBe('limited');
    // Discovery changes back to the whole app: the same checks block again.
    scope = 'app';
    expect(gate.status().gate).toBe('blocked');

    const broken = new DeviceGate({
      posture: () => posture.check(),
      deviceKey: () => Promise.reject(new DeviceKeyError('secret-store-unavailable', 'Install and unlock a keyring.')),
      requiredChecks: () => required,
      scope: () => 'models',
      clock,
    });
    expect(await broken.recheck()).toMatchObject({ gate: 'blocked', problem: 'Install and unlock a keyring.' });
  });

  it('passes the recorded compliant device', async () => {
    const posture = createRecordedPostureService(compliantLinuxDevice);
    const gate = new DeviceGate({
      posture: () => posture.check(),
      deviceKey: async () => key,
      requiredChecks: () => required,
      clock,
    });
    expect((await gate.recheck()).gate).toBe('pass');
  });

  it('blocks a compliant device the gateway holds pending, until the next check asks again', async () => {
    const posture = createRecordedPostureService(compliantLinuxDevice);
    const gate = new DeviceGate({
      posture: () => posture.check(),
      deviceKey: async () => key,
      requiredChecks: () => required,
      clock,
    });
    await gate.recheck();
    const seen: DeviceStatus[] = [];
    gate.onDidChange((s) => seen.push(s));
    gate.setEnrolmentRefusal({ reason: 'DEVICE_ENROLMENT_PENDING', message: 'IT has been asked to approve it.' });
    const status = DeviceStatus.parse(gate.status());
    expect(status.gate).toBe('blocked');
    expect(status.enrolment).toEqual({
      reason: 'DEVICE_ENROLMENT_PENDING',
      message: 'IT has been asked to approve it.',
    });
    expect(seen.map((s) => s.gate)).toEqual(['blocked']);
    expect((await gate.recheck()).gate).toBe('pass');
    expect(gate.status().enrolment).toBeUndefined();
  });

  it('unblocks on "check again" once the device is fixed, and tells listeners', async () => {
    let firewall: PostureCheck['status'] = 'fail';
    const gate = new DeviceGate({
      posture: async () => [check('firewall', firewall)],
      deviceKey: async () => key,
      requiredChecks: () => ['firewall'],
      clock,
    });
    const seen: string[] = [];
    gate.onDidChange((s) => seen.push(s.gate));
    await gate.recheck();
    firewall = 'pass';
    await gate.recheck();
    expect(seen).toEqual(['blocked', 'pass']);
  });

  it('shares one run between concurrent rechecks', async () => {
    let runs = 0;
    const gate = new DeviceGate({
      posture: async () => {
        runs++;
        return [];
      },
      deviceKey: async () => key,
      requiredChecks: () => [],
      clock,
    });
    await Promise.all([gate.recheck(), gate.recheck(), gate.recheck()]);
    expect(runs).toBe(1);
  });

  it('blocks with the key store’s own words when the device key cannot be protected', async () => {
    const gate = new DeviceGate({
      posture: async () => [check('firewall', 'pass')],
      deviceKey: () => Promise.reject(new DeviceKeyError('secret-store-unavailable', 'Install and unlock a keyring.')),
      requiredChecks: () => ['firewall'],
      clock,
    });
    const status = DeviceStatus.parse(await gate.recheck());
    expect(status).toMatchObject({ gate: 'blocked', problem: 'Install and unlock a keyring.' });
    expect(status.thumbprint).toBeUndefined();
  });

  it('never exposes key material in the status or its events, only the thumbprint', async () => {
    folder = await mkdtemp(join(tmpdir(), 'clearance-gate-'));
    const secrets = new MemorySecretStore();
    const store = new DeviceKeyStore({ paths: { userData: folder, logs: folder }, secrets, log: () => undefined });
    const deviceKey = await store.load();
    const stored = JSON.parse(await readFile(store.filePath, 'utf8')) as { encryptedPrivateKey: string };
    const privateKey = createPrivateKey({
      key: Buffer.from(secrets.decrypt(Buffer.from(stored.encryptedPrivateKey, 'base64'))),
      format: 'der',
      type: 'pkcs8',
    });
    const d = String(privateKey.export({ format: 'jwk' }).d);
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const posture = createRecordedPostureService(noncompliantLinuxDevice);
    const gate = new DeviceGate({
      posture: () => posture.check(),
      deviceKey: () => store.load(),
      requiredChecks: () => required,
      clock,
    });
    const events: string[] = [];
    gate.onDidChange((s) => events.push(JSON.stringify(s)));
    const serialized = [JSON.stringify(await gate.recheck()), JSON.stringify(gate.status()), ...events];
    for (const json of serialized) {
      expect(json).toContain(deviceKey.thumbprint);
      for (const secret of [d, pem, 'PRIVATE KEY', deviceKey.publicJwk.x, deviceKey.publicJwk.y]) {
        expect(json).not.toContain(secret);
      }
    }
  });
});
