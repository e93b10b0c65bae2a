import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { evaluatePolicy } from './config/policy';
import { createNodeAdapters } from './node/adapters';
import { createServices } from './services';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('createServices with invalid managed configuration', () => {
  it('starts nothing, refuses sign-in, and tells the page which key is wrong', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'clearance-services-'));
    dirs.push(profile);
    const fetched: string[] = [];
    const logged: string[] = [];
    const managed = evaluatePolicy({
      values: [
        {
          key: 'updatePolicy',
          value: 'always',
          source: 'file',
          level: 'machine',
          location: '/etc/clearance/policy.json',
        },
      ],
      problems: [],
      present: true,
    });
    const services = createServices(
      createNodeAdapters({
        paths: { userData: profile, logs: profile },
        browser: { open: async () => {} },
        http: async (input) => {
          fetched.push(String(input));
          throw new Error('no network in this test');
        },
      }),
      {
        gatewayUrl: 'http://127.0.0.1:9',
        appVersion: '0.0.0-test',
        shell: 'harness',
        platform: 'linux',
        packaged: true,
        argv: [],
        env: {},
        managed,
        log: (message) => logged.push(message),
      },
    );
    await services.start();
    const view = await services.handlers.getManagedPolicy({});
    expect(view.state).toBe('invalid');
    expect(view.problems).toEqual([
      {
        key: 'updatePolicy',
        location: '/etc/clearance/policy.json',
        message: expect.stringMatching(/off.*notify.*auto/),
      },
    ]);
    await expect(services.handlers.signIn({})).rejects.toMatchObject({ message: expect.stringMatching(/settings/) });
    expect(fetched).toEqual([]);
    expect(logged.join('\n')).toMatch(/Managed configuration is invalid; Clearance will not start: updatePolicy/);
    await services.dispose();
  });
});

describe('createServices with a managed support contact', () => {
  it("names IT's contact instead of the gateway's wherever the app tells people whom to ask", async () => {
    const profile = await mkdtemp(join(tmpdir(), 'clearance-services-'));
    dirs.push(profile);
    const managed = evaluatePolicy({
      values: [
        {
          key: 'supportContact',
          value: 'Lab IT desk, ext. 4242',
          source: 'file',
          level: 'machine',
          location: '/etc/clearance/policy.json',
        },
      ],
      problems: [],
      present: true,
    });
    const services = createServices(
      createNodeAdapters({
        paths: { userData: profile, logs: profile },
        browser: { open: async () => {} },
        http: async () => {
          throw new Error('no network in this test');
        },
      }),
      {
        gatewayUrl: 'http://127.0.0.1:9',
        appVersion: '0.0.0-test',
        shell: 'harness',
        platform: 'linux',
        packaged: false,
        argv: [],
        env: {},
        managed,
        log: () => {},
      },
    );
    expect(services.access.supportContact).toBe('Lab IT desk, ext. 4242');
    expect((await services.handlers.getEntitlements({})).supportContact).toBe('Lab IT desk, ext. 4242');
    await services.dispose();
  });
});
