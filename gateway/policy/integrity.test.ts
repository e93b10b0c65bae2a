import {
  cpSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemDetails } from '../../shared/problem';
import { DEFAULT_CATALOG_PATH } from '../catalog';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import type { GatewayTestClient } from '../testing/device-client';
import { DEFAULT_POLICIES_DIR } from './engine';
import { POLICY_MANIFEST_FILE } from './candidate';
import { publishPolicies } from './publish';

const chat = { messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 };
const EXPORT_CONTROL = 'export-control.cedar';

interface Health {
  status: string;
  policy: { revision: number; lastRefused: { at: string; reason: string } | null };
  catalog: { revision: string; lastRefused: { at: string; reason: string } | null };
}

async function health(harness: GatewayHarness): Promise<Health> {
  const response = await fetch(`${harness.gateway.url}/healthz`);
  expect(response.status).toBe(200);
  return (await response.json()) as Health;
}

async function until<T>(probe: () => Promise<T>, accept: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The foreign-national researcher asks for Mythos 5: must be 403 with the directive's reason. */
async function expectMythosDenied(client: GatewayTestClient): Promise<void> {
  const response = await client.request('POST', '/v1/chat/completions', { body: { ...chat, model: 'mythos-5' } });
  expect(response.status).toBe(403);
  expect(ProblemDetails.parse(await response.json()).reason).toBe('EXPORT_CONTROL_US_PERSON_REQUIRED');
}

describe('a damaged policy file never opens a denied model', () => {
  let harness: GatewayHarness;
  let client: GatewayTestClient;
  let original: string;
  beforeAll(async () => {
    harness = await startGatewayHarness({ reloadDebounceMs: 20, reconcileSeconds: 0.2 });
    client = await harness.signIn(testPersonas.fnResearcher);
    original = readFileSync(join(harness.policiesDir, EXPORT_CONTROL), 'utf8');
  });
  afterAll(async () => {
    await harness?.close();
  });
  const restore = async () => {
    writeFileSync(join(harness.policiesDir, EXPORT_CONTROL), original);
    await until(
      () => health(harness),
      (h) => h.policy.lastRefused === null,
      'the restored set',
    );
  };

  it('refuses an emptied file, keeps the set in force and says why in health', async () => {
    await expectMythosDenied(client);
    const revision = harness.gateway.policy.revision;
    writeFileSync(join(harness.policiesDir, EXPORT_CONTROL), '');
    const refused = await until(
      () => health(harness),
      (h) => h.policy.lastRefused !== null,
      'the refusal',
    );
    expect(refused.status).toBe('degraded');
    expect(refused.policy.lastRefused?.reason).toContain(`${EXPORT_CONTROL} of the set in force is empty`);
    expect(refused.policy.revision).toBe(revision);
    await expectMythosDenied(client);
    expect(harness.logLines.some((l) => l.startsWith('policy reload rejected') && l.includes('is empty'))).toBe(true);
    await restore();
    expect(harness.gateway.policy.revision).toBe(revision);
  });

  it('refuses a file truncated to a prefix that still parses but lost the forbid', async () => {
    const cut = original.slice(0, original.indexOf('// While HR verifies'));
    // The directive's first forbid stays; the pending-verification forbid is cut off.
    writeFileSync(join(harness.policiesDir, EXPORT_CONTROL), cut);
    const refused = await until(
      () => health(harness),
      (h) => h.policy.lastRefused !== null,
      'the refusal',
    );
    expect(refused.policy.lastRefused?.reason).toContain('"ec-2026-06-verification-pending"');
    const pending = await harness.signIn(testPersonas.pending);
    const response = await pending.request('POST', '/v1/chat/completions', { body: { ...chat, model: 'mythos-5' } });
    expect(response.status).toBe(403);
    expect(ProblemDetails.parse(await response.json()).reason).toBe('IDENTITY_VERIFICATION_PENDING');
    await restore();
  });

  it('refuses a file truncated in the middle of a policy', async () => {
    truncateSync(join(harness.policiesDir, EXPORT_CONTROL), Math.floor(original.length / 2));
    await until(
      () => health(harness),
      (h) => h.policy.lastRefused !== null,
      'the refusal',
    );
    await expectMythosDenied(client);
    await restore();
  });

  it('refuses a deleted file', async () => {
    unlinkSync(join(harness.policiesDir, EXPORT_CONTROL));
    // A reconcile (every 0.2 s here) that listed the folder just before the unlink is refused first, with
    // "cannot read …: ENOENT"; the reload the deletion itself starts names the missing file.
    const refused = await until(
      () => health(harness),
      (h) => h.policy.lastRefused?.reason.includes('of the set in force is missing') === true,
      'the refusal naming the missing file',
    );
    expect(refused.policy.lastRefused?.reason).toContain(`${EXPORT_CONTROL} of the set in force is missing`);
    await expectMythosDenied(client);
    await restore();
  });

  it('stays shut through a non-atomic rewrite (truncate, pause, write)', async () => {
    const path = join(harness.policiesDir, EXPORT_CONTROL);
    truncateSync(path, 0);
    await until(
      () => health(harness),
      (h) => h.policy.lastRefused !== null,
      'the refusal of the gap',
    );
    await expectMythosDenied(client);
    writeFileSync(path, original.slice(0, 200), { flag: 'a' });
    await expectMythosDenied(client);
    writeFileSync(path, original);
    await until(
      () => health(harness),
      (h) => h.policy.lastRefused === null,
      'the complete file',
    );
    await expectMythosDenied(client);
  });

  it('accepts a removal that an administrator confirms, and audits who did it', async () => {
    const path = join(harness.policiesDir, EXPORT_CONTROL);
    unlinkSync(path);
    await until(
      () => health(harness),
      (h) => h.policy.lastRefused !== null,
      'the refusal',
    );
    const admin = (body: unknown, token = harness.gateway.adminToken) =>
      fetch(`${harness.gateway.url}/v1/admin/policies/reload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await admin({ acceptRemovals: true }, 'wrong')).status).toBe(401);
    expect(harness.gateway.policy.policies.some((p) => p.id === 'ec-2026-06-us-persons')).toBe(true);
    const plain = await admin({});
    expect(plain.status).toBe(409);
    const confirmed = await admin({ acceptRemovals: true });
    expect(confirmed.status).toBe(200);
    expect(harness.gateway.policy.policies.some((p) => p.id === 'ec-2026-06-us-persons')).toBe(false);
    const records = await harness.gateway.audit.list({ limit: 10_000 });
    expect(records.filter((r) => r.kind === 'admin').at(-1)?.data).toMatchObject({
      action: 'policies.reload',
      acceptRemovals: true,
      ok: true,
    });
    writeFileSync(path, original);
    await until(
      () => Promise.resolve(harness.gateway.policy.policies.some((p) => p.id === 'ec-2026-06-us-persons')),
      (back) => back,
      'the directive back in force',
    );
    await expectMythosDenied(client);
  });
});

describe('publishing policies with a manifest', () => {
  it('applies a removal published by the tool, and refuses files that no longer match it', async () => {
    const harness = await startGatewayHarness({ reloadDebounceMs: 20, reconcileSeconds: 0.2 });
    try {
      const client = await harness.signIn(testPersonas.fnResearcher);
      const source = join(harness.stateDir, 'release');
      cpSync(DEFAULT_POLICIES_DIR, source, { recursive: true });
      publishPolicies(source, harness.policiesDir, { publishedBy: 'it-release' });
      await until(
        () => health(harness),
        (h) =>
          h.policy.lastRefused === null && readFileSync(join(harness.policiesDir, POLICY_MANIFEST_FILE)).length > 0,
        'the published set',
      );
      const first = harness.gateway.policy.revision;
      // A hand edit under a manifest is refused even when it only adds.
      writeFileSync(join(harness.policiesDir, 'extra.cedar'), '@id("extra")\npermit (principal, action, resource);\n');
      const refused = await until(
        () => health(harness),
        (h) => h.policy.lastRefused !== null,
        'the refusal',
      );
      expect(refused.policy.lastRefused?.reason).toContain('extra.cedar is not in the manifest');
      unlinkSync(join(harness.policiesDir, 'extra.cedar'));
      await until(
        () => health(harness),
        (h) => h.policy.lastRefused === null,
        'the folder matching again',
      );
      await expectMythosDenied(client);
      // The publish tool removes the directive: an intended, documented act.
      unlinkSync(join(source, EXPORT_CONTROL));
      publishPolicies(source, harness.policiesDir, { publishedBy: 'it-release' });
      // Earlier reloads of the same content may already have moved the revision on: wait for the
      // published removal itself to be in force, then for the call it allows.
      await until(
        () => health(harness),
        (h) => h.policy.lastRefused === null && harness.gateway.policy.revision > first,
        'the new revision',
      );
      const status = await until(
        async () =>
          (await client.request('POST', '/v1/chat/completions', { body: { ...chat, model: 'mythos-5' } })).status,
        (code) => code === 200,
        'mythos-5 allowed once the directive is removed',
      );
      expect(status).toBe(200);
    } finally {
      await harness.close();
    }
  });

  it('refuses to publish a set that does not validate, leaving the target untouched', async () => {
    const harness = await startGatewayHarness({ reloadDebounceMs: 20, reconcileSeconds: 0 });
    try {
      const source = join(harness.stateDir, 'broken');
      cpSync(DEFAULT_POLICIES_DIR, source, { recursive: true });
      writeFileSync(join(source, 'broken.cedar'), '@id("broken")\npermit (principal, action, resource) when {');
      expect(() => publishPolicies(source, harness.policiesDir, {})).toThrow(/broken\.cedar/);
      expect(() => readFileSync(join(harness.policiesDir, POLICY_MANIFEST_FILE))).toThrow();
      expect(() => readFileSync(join(harness.policiesDir, 'broken.cedar'))).toThrow();
    } finally {
      await harness.close();
    }
  });
});

describe('reloading never stops silently', () => {
  const extra = (n: number) => `@id("extra-${n}")\npermit (principal, action, resource) when { false };\n`;

  it('follows 10 consecutive write-then-rename replacements of a policy file (watcher only)', async () => {
    const harness = await startGatewayHarness({ reloadDebounceMs: 20, reconcileSeconds: 0 });
    try {
      const path = join(harness.policiesDir, 'extra.cedar');
      for (let n = 1; n <= 10; n++) {
        writeFileSync(`${path}.tmp`, extra(n));
        renameSync(`${path}.tmp`, path);
        await until(
          () => Promise.resolve(harness.gateway.policy.policies.map((p) => p.id)),
          (ids) => ids.includes(`extra-${n}`),
          `replacement ${n}`,
        );
      }
      expect((await health(harness)).policy.lastRefused).toBeNull();
    } finally {
      await harness.close();
    }
  });

  it('follows 10 consecutive write-then-rename replacements of the catalog file (watcher only)', async () => {
    const dir = join(
      await import('node:os').then((os) => os.tmpdir()),
      `clearance-catalog-${process.pid}-${Date.now()}`,
    );
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'catalog.json');
    const base = JSON.parse(readFileSync(DEFAULT_CATALOG_PATH, 'utf8')) as { models: { id: string; name: string }[] };
    writeFileSync(path, JSON.stringify(base));
    const harness = await startGatewayHarness({ catalog: path, reloadDebounceMs: 20, reconcileSeconds: 0 });
    try {
      for (let n = 1; n <= 10; n++) {
        const next = { models: base.models.map((m) => (m.id === 'haiku-4' ? { ...m, name: `Haiku 4 (${n})` } : m)) };
        writeFileSync(`${path}.tmp`, JSON.stringify(next));
        renameSync(`${path}.tmp`, path);
        await until(
          () => Promise.resolve(harness.gateway.catalog().get('haiku-4')?.name),
          (name) => name === `Haiku 4 (${n})`,
          `catalog replacement ${n}`,
        );
      }
      writeFileSync(path, '');
      const refused = await until(
        () => health(harness),
        (h) => h.catalog.lastRefused !== null,
        'the refusal',
      );
      expect(refused.catalog.lastRefused?.reason).toContain('is empty');
      expect(harness.gateway.catalog().get('haiku-4')?.name).toBe('Haiku 4 (10)');
    } finally {
      await harness.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps reloading after the policies folder is deleted and recreated (watcher only)', async () => {
    const harness = await startGatewayHarness({ reloadDebounceMs: 20, reconcileSeconds: 0 });
    try {
      const client = await harness.signIn(testPersonas.fnResearcher);
      const saved = join(harness.stateDir, 'saved');
      cpSync(harness.policiesDir, saved, { recursive: true });
      rmSync(harness.policiesDir, { recursive: true });
      await until(
        () => health(harness),
        (h) => h.policy.lastRefused !== null,
        'the refusal of the missing folder',
      );
      await expectMythosDenied(client);
      cpSync(saved, harness.policiesDir, { recursive: true });
      await until(
        () => health(harness),
        (h) => h.policy.lastRefused === null,
        'the folder back',
      );
      writeFileSync(join(harness.policiesDir, 'extra.cedar'), extra(1));
      await until(
        () => Promise.resolve(harness.gateway.policy.policies.map((p) => p.id)),
        (ids) => ids.includes('extra-1'),
        'a change after the folder was recreated',
      );
      await expectMythosDenied(client);
    } finally {
      await harness.close();
    }
  });

  it('follows a symlinked folder flipped in one rename, ConfigMap style (watcher only)', async () => {
    const stateRoot = join((await import('node:os')).tmpdir(), `clearance-flip-${process.pid}-${Date.now()}`);
    const v1 = join(stateRoot, 'v1');
    const v2 = join(stateRoot, 'v2');
    const current = join(stateRoot, 'current');
    cpSync(DEFAULT_POLICIES_DIR, v1, { recursive: true });
    cpSync(DEFAULT_POLICIES_DIR, v2, { recursive: true });
    writeFileSync(join(v2, 'extra.cedar'), extra(2));
    symlinkSync(v1, current);
    const harness = await startGatewayHarness({ policiesDir: current, reloadDebounceMs: 20, reconcileSeconds: 0 });
    try {
      symlinkSync(v2, join(stateRoot, 'next'));
      renameSync(join(stateRoot, 'next'), current);
      await until(
        () => Promise.resolve(harness.gateway.policy.policies.map((p) => p.id)),
        (ids) => ids.includes('extra-2'),
        'the flipped folder',
      );
    } finally {
      await harness.close();
      rmSync(stateRoot, { recursive: true, force: true });
    }
  });

  it('reconciles by content hash when no file event arrives', async () => {
    const harness = await startGatewayHarness({ reloadDebounceMs: 60_000, reconcileSeconds: 0.1 });
    try {
      writeFileSync(join(harness.policiesDir, 'extra.cedar'), extra(3));
      await until(
        () => Promise.resolve(harness.gateway.policy.policies.map((p) => p.id)),
        (ids) => ids.includes('extra-3'),
        'the reconcile',
      );
    } finally {
      await harness.close();
    }
  });
});
