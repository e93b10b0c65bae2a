import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sha256Hex } from './candidate';
import { inspectPolicies } from './check';
import { DEFAULT_POLICIES_DIR } from './engine';
import { PolicyChecker } from './checker';

/**
 * The checker's side of the worker protocol (issue 16), without waiting for a worker: the test
 * plays the worker by emitting its events, so every answer the checker must refuse (and every
 * one it must take) is checked exactly and at once. The thread started is a silent one.
 */
const SILENT = new URL(
  `data:text/javascript,${encodeURIComponent("import { parentPort } from 'node:worker_threads'; parentPort.on('message', () => {});")}`,
);

const checkers: PolicyChecker[] = [];
const checker = (options: ConstructorParameters<typeof PolicyChecker>[0] = {}) => {
  const made = new PolicyChecker({ url: SILENT, ...options });
  checkers.push(made);
  return made;
};
const workerOf = (made: PolicyChecker) => (made as unknown as { worker: Worker | undefined }).worker;
afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await Promise.all(checkers.splice(0).map((made) => made.close()));
});

/** Settles `promise` now-ish: its outcome, or 'pending'. */
async function outcome<T>(promise: Promise<T>): Promise<{ value: T } | { error: Error } | 'pending'> {
  let result: { value: T } | { error: Error } | 'pending' = 'pending';
  promise.then(
    (value) => (result = { value }),
    (error: Error) => (result = { error }),
  );
  for (let turn = 0; turn < 5; turn++) await Promise.resolve();
  return result;
}

const HASH = sha256Hex('x');
const candidate = (overrides: Record<string, unknown> = {}) => ({
  realDir: '/p',
  files: new Map([['a.cedar', 'A']]),
  contentHash: HASH,
  ...overrides,
});
const policy = (overrides: Record<string, unknown> = {}) => ({
  id: 'p',
  effect: 'permit',
  file: 'a.cedar',
  text: 'permit (principal, action, resource);',
  annotations: { id: 'p' },
  ...overrides,
});
const inspection = (overrides: Record<string, unknown> = {}) => ({
  candidate: candidate(),
  parsed: { policies: [policy()] },
  ms: 3,
  ...overrides,
});
const MANIFEST = { version: 1, files: { 'a.cedar': HASH }, publishedAt: '2026-01-01T00:00:00.000Z' };

describe('PolicyChecker answers', () => {
  it.each([
    ['a read error', { readError: 'cannot read' }],
    ['a parsed set', inspection()],
    [
      'a forbid',
      inspection({
        parsed: { policies: [policy({ effect: 'forbid', annotations: { id: 'p', reason: 'MODEL_SUSPENDED' } })] },
      }),
    ],
    ['a parse error', inspection({ parsed: { error: 'bad' } })],
    [
      'a manifest and its error',
      inspection({ candidate: candidate({ manifest: MANIFEST }), manifestError: 'differs' }),
    ],
    ['a validation error', inspection({ validationError: 'schema validation failed: x' })],
  ])('takes %s, with the thread that made it', async (_what, answer) => {
    const made = checker();
    const postMessage = vi.spyOn(Worker.prototype, 'postMessage');
    const pending = made.inspect('/policies');
    const worker = workerOf(made)!;
    expect(postMessage).toHaveBeenCalledWith({ id: 1, dir: '/policies' });
    worker.emit('message', { id: 1, inspection: answer });
    expect(await outcome(pending)).toEqual({ value: { inspection: answer, threadId: worker.threadId } });
    // The worker stays in use.
    made.inspect('/again').catch(() => {});
    expect(workerOf(made)).toBe(worker);
  });

  it.each([
    ['no object', 5, '(root): Invalid input: expected object, received number'],
    ['no id', { inspection: { readError: 'x' } }, 'id: Invalid input: expected number, received undefined'],
    [
      'a fractional id',
      { id: 1.5, inspection: { readError: 'x' } },
      'id: Invalid input: expected int, received number',
    ],
    ['an unknown key', { id: 1, inspection: { readError: 'x' }, extra: 1 }, '(root): Unrecognized key: "extra"'],
    [
      'a read error beside a candidate',
      { id: 1, inspection: { ...inspection(), readError: 'x' } },
      'inspection: Invalid input',
    ],
    ['a read error that is no text', { id: 1, inspection: { readError: 5 } }, 'inspection: Invalid input'],
  ])('refuses an answer with %s, naming the first issue', async (_what, message, issue) => {
    const made = checker();
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    const pending = made.inspect('/policies');
    const worker = workerOf(made)!;
    worker.emit('message', message);
    const result = await outcome(pending);
    expect(result).toMatchObject({
      error: { message: `the policy check worker failed: the worker answered garbage (${issue})` },
    });
    expect((result as { error: Error }).error.cause).toEqual(new Error(`the worker answered garbage (${issue})`));
    // The worker is ended and the next inspection starts a fresh one.
    expect(terminate).toHaveBeenCalledTimes(1);
    made.inspect('/again').catch(() => {});
    expect(workerOf(made)).not.toBe(worker);
  });

  it.each([
    ['a candidate with an unknown key', inspection({ candidate: candidate({ extra: 1 }) })],
    ['a candidate without realDir', inspection({ candidate: candidate({ realDir: undefined }) })],
    ['files that are no map', inspection({ candidate: candidate({ files: { 'a.cedar': 'A' } }) })],
    ['a file text that is no text', inspection({ candidate: candidate({ files: new Map([['a.cedar', 1]]) }) })],
    ['a file name that is no text', inspection({ candidate: candidate({ files: new Map([[1, 'A']]) }) })],
    ['an invalid manifest', inspection({ candidate: candidate({ manifest: { ...MANIFEST, version: 2 } }) })],
    ['an uppercase content hash', inspection({ candidate: candidate({ contentHash: HASH.toUpperCase() }) })],
    ['a content hash of 63 digits', inspection({ candidate: candidate({ contentHash: HASH.slice(1) }) })],
    ['a content hash of 65 digits', inspection({ candidate: candidate({ contentHash: `${HASH}0` }) })],
    ['a manifest error that is no text', inspection({ manifestError: 1 })],
    ['a validation error that is no text', inspection({ validationError: 1 })],
    ['no time', inspection({ ms: undefined })],
    ['an unknown key beside the candidate', inspection({ extra: 1 })],
    ['a parse result with an unknown key', inspection({ parsed: { policies: [policy()], extra: 1 } })],
    ['a parse error that is no text', inspection({ parsed: { error: 1 } })],
    ['both policies and an error', inspection({ parsed: { policies: [policy()], error: 'x' } })],
    ['a policy with an empty id', inspection({ parsed: { policies: [policy({ id: '' })] } })],
    ['a policy with another effect', inspection({ parsed: { policies: [policy({ effect: 'allow' })] } })],
    ['a policy without a file', inspection({ parsed: { policies: [policy({ file: undefined })] } })],
    ['a policy without text', inspection({ parsed: { policies: [policy({ text: undefined })] } })],
    ['an annotation that is no text', inspection({ parsed: { policies: [policy({ annotations: { id: 1 } })] } })],
    ['a policy with an unknown key', inspection({ parsed: { policies: [policy({ extra: 1 })] } })],
  ])('refuses an inspection with %s', async (_what, answer) => {
    const made = checker();
    const pending = made.inspect('/policies');
    workerOf(made)!.emit('message', { id: 1, inspection: answer });
    const result = await outcome(pending);
    expect(result).toMatchObject({
      error: {
        message: expect.stringMatching(/^the policy check worker failed: the worker answered garbage \(inspection/),
      },
    });
  });

  it('resolves each inspection by its own id and ignores answers to none', async () => {
    const made = checker();
    const first = made.inspect('/one');
    const second = made.inspect('/two');
    const worker = workerOf(made)!;
    worker.emit('message', { id: 7, inspection: { readError: 'nobody asked' } });
    worker.emit('message', { id: 2, inspection: { readError: 'two' } });
    expect(await outcome(second)).toEqual({ value: { inspection: { readError: 'two' }, threadId: worker.threadId } });
    expect(await outcome(first)).toBe('pending');
    worker.emit('message', { id: 1, inspection: { readError: 'one' } });
    expect(await outcome(first)).toEqual({ value: { inspection: { readError: 'one' }, threadId: worker.threadId } });
    // An answer repeated after its inspection resolved changes nothing.
    worker.emit('message', { id: 1, inspection: { readError: 'again' } });
    expect(workerOf(made)).toBe(worker);
  });

  it.each([
    ['an error', (worker: Worker) => worker.emit('error', new Error('boom')), 'boom'],
    [
      'a message it cannot read',
      (worker: Worker) => worker.emit('messageerror', new Error('cannot clone')),
      'cannot clone',
    ],
    ['an exit', (worker: Worker) => worker.emit('exit', 3), 'the worker exited with code 3'],
  ])('refuses every pending inspection on %s and ends the worker once', async (_what, happen, message) => {
    const made = checker();
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    const first = made.inspect('/one');
    const second = made.inspect('/two');
    const worker = workerOf(made)!;
    happen(worker);
    for (const pending of [first, second]) {
      const result = await outcome(pending);
      expect(result).toMatchObject({ error: { message: `the policy check worker failed: ${message}` } });
      expect((result as { error: Error }).error.cause).toMatchObject({ message });
    }
    expect(terminate).toHaveBeenCalledTimes(1);
    // Later events of the ended worker touch neither the fresh one nor what waits on it.
    const third = made.inspect('/three');
    const fresh = workerOf(made)!;
    expect(fresh).not.toBe(worker);
    worker.emit('exit', 1);
    worker.emit('message', { id: 3, inspection: { readError: 'stale' } });
    expect(await outcome(third)).toBe('pending');
    expect(workerOf(made)).toBe(fresh);
    expect(terminate).toHaveBeenCalledTimes(1);
  });

  it('gives up on a worker that does not answer in time, by default after 30 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const made = checker();
    const pending = made.inspect('/slow');
    const worker = workerOf(made)!;
    vi.advanceTimersByTime(29_999);
    expect(await outcome(pending)).toBe('pending');
    vi.advanceTimersByTime(1);
    expect(await outcome(pending)).toMatchObject({
      error: { message: 'the policy check worker failed: no answer within 30000 ms' },
    });
    expect(workerOf(made)).toBeUndefined();
    made.inspect('/next').catch(() => {});
    expect(workerOf(made)).not.toBe(worker);
  });

  it('gives up after the timeout it is given, and the timer does not keep the process alive', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const made = checker({ timeoutMs: 250 });
    const pending = made.inspect('/slow');
    const timer = vi.getTimerCount();
    expect(timer).toBe(1);
    vi.advanceTimersByTime(249);
    expect(await outcome(pending)).toBe('pending');
    vi.advanceTimersByTime(1);
    expect(await outcome(pending)).toMatchObject({
      error: { message: 'the policy check worker failed: no answer within 250 ms' },
    });
  });

  it('stops the timer of an answered inspection', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const made = checker({ timeoutMs: 250 });
    const answered = made.inspect('/one');
    const worker = workerOf(made)!;
    worker.emit('message', { id: 1, inspection: { readError: 'one' } });
    expect(await outcome(answered)).toMatchObject({ value: { inspection: { readError: 'one' } } });
    expect(vi.getTimerCount()).toBe(0);
    const second = made.inspect('/two');
    vi.advanceTimersByTime(249);
    expect(workerOf(made)).toBe(worker);
    expect(await outcome(second)).toBe('pending');
  });

  it('unrefs its worker and its timers', () => {
    const unref = vi.spyOn(Worker.prototype, 'unref');
    const timeouts: NodeJS.Timeout[] = [];
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const made = checker();
    made.inspect('/x').catch(() => {});
    expect(unref).toHaveBeenCalledTimes(1);
    for (const result of setTimeoutSpy.mock.results) timeouts.push(result.value as NodeJS.Timeout);
    expect(timeouts.length).toBeGreaterThan(0);
    expect(timeouts.every((timer) => !timer.hasRef())).toBe(true);
  });

  it('starts its worker at once, warming it on a folder when given one', async () => {
    const postMessage = vi.spyOn(Worker.prototype, 'postMessage');
    const cold = checker();
    cold.start();
    expect(workerOf(cold)).toBeInstanceOf(Worker);
    expect(postMessage).not.toHaveBeenCalled();
    const warm = checker();
    warm.start('/policies');
    expect(workerOf(warm)).toBeInstanceOf(Worker);
    expect(postMessage).toHaveBeenCalledWith({ id: 1, dir: '/policies' });
    // A failed warm-up is nobody's error.
    workerOf(warm)!.emit('exit', 1);
    await outcome(Promise.resolve());
  });

  it('refuses inspections once closed, and refuses what was pending', async () => {
    const made = checker();
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    await made.close();
    expect(terminate).not.toHaveBeenCalled();
    expect(await outcome(made.inspect('/x'))).toMatchObject({ error: { message: 'the policy checker is closed' } });
    expect(workerOf(made)).toBeUndefined();

    const busy = checker();
    const pending = busy.inspect('/x');
    await busy.close();
    expect(await outcome(pending)).toMatchObject({
      error: { message: 'the policy check worker failed: the policy checker is closing' },
    });
    expect(terminate).toHaveBeenCalledTimes(1);
    expect(workerOf(busy)).toBeUndefined();
  });
});

describe('PolicyChecker with a real thread', () => {
  const script = (code: string) => new URL(`data:text/javascript,${encodeURIComponent(code)}`);

  it('boots check-worker.ts by default and answers with its inspection and thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clearance-checker-'));
    try {
      cpSync(DEFAULT_POLICIES_DIR, dir, { recursive: true });
      const made = new PolicyChecker();
      checkers.push(made);
      const answer = await made.inspect(dir);
      const worker = workerOf(made)!;
      expect(answer.threadId).toBe(worker.threadId);
      expect(answer.threadId).toBeGreaterThan(0);
      expect({ ...answer.inspection, ms: 0 }).toEqual({ ...inspectPolicies(dir), ms: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("hands the worker the test's data", async () => {
    const made = checker({
      url: script(
        "import { parentPort, workerData } from 'node:worker_threads'; parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, inspection: { readError: `${m.dir} ${JSON.stringify(workerData.data)}` } }));",
      ),
      data: { mode: 'x' },
    });
    expect((await made.inspect('/d')).inspection).toEqual({ readError: '/d {"mode":"x"}' });
  });

  it('refuses what was pending when the worker exits, and the next inspection boots a fresh one', async () => {
    const made = checker({
      url: script("import { parentPort } from 'node:worker_threads'; parentPort.on('message', () => process.exit(3));"),
    });
    await expect(made.inspect('/d')).rejects.toThrow('the policy check worker failed: the worker exited with code 3');
  });
});
