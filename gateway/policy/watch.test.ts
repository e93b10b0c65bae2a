import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * `watchSource` with the file system's watches played by the test (issue 16): which paths are
 * watched, which events count, the debounce and the reconcile on a fake clock, re-arming, and
 * that nothing fires after dispose. No real watch and no real waiting.
 */
class FakeWatcher extends EventEmitter {
  closed = false;
  constructor(
    readonly target: string,
    readonly options: unknown,
    readonly listener: (event: string, file: string | null) => void,
  ) {
    super();
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}

const fake = vi.hoisted(() => ({
  watchers: [] as FakeWatcher[],
  refuse: new Map<string, string>(),
  statFails: new Set<string>(),
  make: undefined as unknown as (target: string, options: unknown, listener: never) => FakeWatcher,
}));

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return {
    ...actual,
    watch: (target: string, options: unknown, listener: never) => {
      const refusal = fake.refuse.get(target);
      if (refusal) throw new Error(refusal);
      return fake.make(target, options, listener);
    },
    statSync: (path: string) => {
      if (fake.statFails.has(path)) throw new Error('EACCES');
      return actual.statSync(path);
    },
  };
});

const { watchSource } = await import('./watch');

let root: string;
let folder: string;
let calls: string[];
let logs: string[];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
  root = mkdtempSync(join(tmpdir(), 'clearance-watch-'));
  folder = join(root, 'policies');
  mkdirSync(folder);
  fake.watchers = [];
  fake.refuse.clear();
  fake.statFails.clear();
  fake.make = (target, options, listener) => {
    const watcher = new FakeWatcher(target, options, listener);
    fake.watchers.push(watcher);
    return watcher;
  };
  calls = [];
  logs = [];
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(root, { recursive: true, force: true });
});

const open = () => fake.watchers.filter((watcher) => !watcher.closed);
const on = (target: string) => open().filter((watcher) => watcher.target === target);
const watchOf = (path: string, debounceMs = 100, reconcileMs = 0) =>
  watchSource(
    path,
    { debounceMs, reconcileMs },
    (trigger) => calls.push(trigger),
    (line) => logs.push(line),
  );

describe('watchSource', () => {
  it('watches a folder itself and its parent, never keeping the process alive for it', () => {
    const subscription = watchOf(folder);
    expect(open().map((watcher) => [watcher.target, watcher.options])).toEqual([
      [folder, { persistent: false }],
      [root, { persistent: false }],
    ]);
    expect(vi.getTimerCount()).toBe(0);
    subscription.dispose();
  });

  it('watches only the parent of a file, of a path that does not exist yet, and of one it cannot examine', () => {
    const file = join(root, 'catalog.json');
    writeFileSync(file, '{}');
    watchOf(file).dispose();
    expect(fake.watchers.map((watcher) => watcher.target)).toEqual([root]);
    fake.watchers = [];
    watchOf(join(root, 'later')).dispose();
    expect(fake.watchers.map((watcher) => watcher.target)).toEqual([root]);
    fake.watchers = [];
    fake.statFails.add(folder);
    watchOf(folder).dispose();
    expect(fake.watchers.map((watcher) => watcher.target)).toEqual([root]);
  });

  it('calls onChange once per burst, after the quiet time', () => {
    const subscription = watchOf(folder, 100);
    const [own] = on(folder);
    own!.listener('change', 'a.cedar');
    vi.advanceTimersByTime(50);
    own!.listener('rename', 'b.cedar');
    vi.advanceTimersByTime(99);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual(['watch']);
    vi.advanceTimersByTime(1_000);
    expect(calls).toEqual(['watch']);
    subscription.dispose();
  });

  it("re-arms the folder's own watch after every burst, keeping the parent's", () => {
    const subscription = watchOf(folder, 10);
    const [own] = on(folder);
    const [parent] = on(root);
    own!.listener('rename', null);
    vi.advanceTimersByTime(10);
    expect(own!.closed).toBe(true);
    expect(on(folder)).toHaveLength(1);
    expect(on(folder)[0]).not.toBe(own);
    expect(on(root)).toEqual([parent]);
    expect(fake.watchers.filter((watcher) => watcher.target === root)).toHaveLength(1);
    subscription.dispose();
  });

  it('stops watching a folder that went away, after the burst', () => {
    const subscription = watchOf(folder, 10);
    rmSync(folder, { recursive: true });
    on(root)[0]!.listener('rename', 'policies');
    vi.advanceTimersByTime(10);
    expect(calls).toEqual(['watch']);
    expect(on(folder)).toEqual([]);
    subscription.dispose();
  });

  it('counts in the parent only the path itself and ConfigMap ..entries', () => {
    const subscription = watchOf(folder, 10);
    const parent = () => on(root)[0]!;
    parent().listener('change', 'other.json');
    parent().listener('change', 'policiesx');
    vi.advanceTimersByTime(100);
    expect(calls).toEqual([]);
    for (const file of ['policies', null, '..data', '..2026_12_06_05_00_00.1']) {
      parent().listener('rename', file);
      vi.advanceTimersByTime(10);
    }
    expect(calls).toEqual(['watch', 'watch', 'watch', 'watch']);
    subscription.dispose();
  });

  it('reconciles on its interval, re-arming the watches, and not at all at 0', () => {
    const subscription = watchOf(folder, 10, 1_000);
    expect(vi.getTimerCount()).toBe(1);
    const [own] = on(folder);
    vi.advanceTimersByTime(999);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual(['reconcile']);
    expect(own!.closed).toBe(true);
    expect(on(folder)).toHaveLength(1);
    vi.advanceTimersByTime(1_000);
    expect(calls).toEqual(['reconcile', 'reconcile']);
    subscription.dispose();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5_000);
    expect(calls).toEqual(['reconcile', 'reconcile']);
  });

  it('does not keep the process alive for the reconcile', () => {
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const subscription = watchOf(folder, 10, 1_000);
    const timer = setIntervalSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    subscription.dispose();
  });

  it('says once that a path cannot be watched yet, and keeps checking by the reconcile', () => {
    fake.refuse.set(root, 'EMFILE: too many open files');
    const subscription = watchOf(folder, 10, 1_000);
    expect(on(folder)).toHaveLength(1);
    vi.advanceTimersByTime(3_000);
    expect(calls).toEqual(['reconcile', 'reconcile', 'reconcile']);
    expect(logs).toEqual([`cannot watch ${root} yet: EMFILE: too many open files; the reconcile keeps checking`]);
    // Once it can, the parent is watched.
    fake.refuse.clear();
    vi.advanceTimersByTime(1_000);
    expect(on(root)).toHaveLength(1);
    subscription.dispose();
  });

  it('says it again after another warning', () => {
    fake.refuse.set(root, 'EMFILE');
    const subscription = watchOf(folder, 10, 1_000);
    fake.refuse.set(root, 'ENOSPC');
    vi.advanceTimersByTime(1_000);
    fake.refuse.set(root, 'EMFILE');
    vi.advanceTimersByTime(1_000);
    expect(logs).toEqual([
      `cannot watch ${root} yet: EMFILE; the reconcile keeps checking`,
      `cannot watch ${root} yet: ENOSPC; the reconcile keeps checking`,
      `cannot watch ${root} yet: EMFILE; the reconcile keeps checking`,
    ]);
    subscription.dispose();
  });

  it('closes a watch that fails, says so, and re-arms it after the quiet time', () => {
    const subscription = watchOf(folder, 10);
    const [own] = on(folder);
    own!.emit('error', new Error('EPERM'));
    expect(own!.closed).toBe(true);
    expect(logs).toEqual([`watching ${folder} failed: EPERM; re-arming`]);
    vi.advanceTimersByTime(10);
    expect(calls).toEqual(['watch']);
    expect(on(folder)).toHaveLength(1);
    subscription.dispose();
  });

  it('opens the parent watch again once it failed', () => {
    const subscription = watchOf(folder, 10);
    const [parent] = on(root);
    parent!.emit('error', new Error('EPERM'));
    expect(logs).toEqual([`watching ${root} failed: EPERM; re-arming`]);
    expect(on(root)).toEqual([]);
    vi.advanceTimersByTime(10);
    expect(on(root)).toHaveLength(1);
    expect(on(root)[0]).not.toBe(parent);
    expect(calls).toEqual(['watch']);
    subscription.dispose();
  });

  it('after dispose: every watch closed, a pending burst dropped, later events ignored', () => {
    const subscription = watchOf(folder, 10, 1_000);
    const watchers = open();
    watchers[0]!.listener('change', 'a.cedar');
    subscription.dispose();
    expect(watchers.every((watcher) => watcher.closed)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    watchers[0]!.listener('change', 'a.cedar');
    watchers[1]!.emit('error', new Error('late'));
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(calls).toEqual([]);
    expect(open()).toEqual([]);
  });
});
