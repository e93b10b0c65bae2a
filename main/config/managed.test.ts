import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { managedPolicyPath, readManagedConfig } from './managed';

async function policyFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-managed-'));
  const path = join(dir, 'policy.json');
  await writeFile(path, content);
  return path;
}

describe('readManagedConfig', () => {
  it('treats a missing file as no managed config', async () => {
    const read = await readManagedConfig(join(tmpdir(), 'does-not-exist', 'policy.json'));
    expect(read).toEqual({ config: {}, present: false });
  });

  it('reads the gateway URL and locks', async () => {
    const read = await readManagedConfig(
      await policyFile(JSON.stringify({ gatewayUrl: 'https://gw.lab.example', locks: ['gatewayUrl'] })),
    );
    expect(read.config.gatewayUrl).toBe('https://gw.lab.example');
    expect(read.config.locks).toEqual(['gatewayUrl']);
    expect(read.error).toBeUndefined();
  });

  it('reports malformed JSON and ignores it', async () => {
    const read = await readManagedConfig(await policyFile('{ "gatewayUrl": '));
    expect(read.present).toBe(true);
    expect(read.config).toEqual({});
    expect(read.error).toMatch(/not valid JSON/);
  });

  it('reports unknown keys and bad URLs by name', async () => {
    const read = await readManagedConfig(await policyFile(JSON.stringify({ gatewayUrl: 'ftp://x', colour: 'red' })));
    expect(read.config).toEqual({});
    expect(read.error).toMatch(/gatewayUrl/);
  });

  it('names a path per platform', () => {
    expect(managedPolicyPath('linux', {})).toBe('/etc/clearance/policy.json');
    expect(managedPolicyPath('win32', { ProgramData: 'D:\\PD' })).toBe('D:\\PD\\Clearance\\policy.json');
  });
});
