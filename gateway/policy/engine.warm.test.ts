import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { inspectPolicies } from './check';
import { PolicyChecker } from './checker';
import { DEFAULT_POLICIES_DIR, PolicyEngine } from './engine';

/**
 * Cedar's warm-up (issue 16), with the checker's worker replaced by `inspectPolicies` on this
 * thread: 96 synthetic decisions before the first set serves, none after a reload.
 */
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clearance-engine-warm-'));
  cpSync(DEFAULT_POLICIES_DIR, dir, { recursive: true });
  vi.spyOn(PolicyChecker.prototype, 'start').mockImplementation(() => {});
  vi.spyOn(PolicyChecker.prototype, 'inspect').mockImplementation(async (path: string) => ({
    inspection: inspectPolicies(path),
    threadId: 42,
  }));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('Cedar warm-up', () => {
  it('runs 96 synthetic decisions, each once and in order, before the first set serves, and none after a reload', async () => {
    const warmed: number[] = [];
    const spy = PolicyEngine.prototype as unknown as { warmOne(snapshot: unknown, index: number): void };
    const original = spy.warmOne;
    spy.warmOne = function (this: PolicyEngine, snapshot, index) {
      warmed.push(index);
      original.call(this, snapshot, index);
    };
    try {
      const engine = PolicyEngine.create({ policiesDir: dir });
      expect(warmed).toEqual(Array.from({ length: 96 }, (_, index) => index));
      warmed.length = 0;
      writeFileSync(
        join(dir, 'zz-warm.cedar'),
        '@id("warm-edit")\npermit (principal, action, resource) when { false };\n',
      );
      expect(await engine.reload()).toMatchObject({ ok: true, revision: 2 });
      expect(warmed).toEqual([]);
      // Warming decides nothing for anyone: the cache is empty.
      expect(engine.cacheEntries).toBe(0);
      await engine.close();
    } finally {
      spy.warmOne = original;
    }
  });
});
