import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { PolicyManifest } from './candidate';
import type { PolicyInspection } from './check';

/** Where the policy check thread and its faults come from (a test points `url` at a fixture). */
export interface PolicyCheckerOptions {
  /** The worker's module; `check-worker.ts` unless a test says otherwise. */
  readonly url?: URL;
  /** Passed to the worker as `workerData.data`. */
  readonly data?: unknown;
  /** Longest wait for one answer; then the worker is ended and the reload refused. */
  readonly timeoutMs?: number;
}

/** An inspection and the thread that made it. */
export interface CheckedInspection {
  readonly inspection: PolicyInspection;
  readonly threadId: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const TSX_API = createRequire(import.meta.url).resolve('tsx/esm/api');
/** The worker's first code: TypeScript modules load through tsx, as in the gateway itself. */
const BOOT = `const { workerData } = require('node:worker_threads');
require(workerData.tsxApi).register();
import(workerData.entry).catch((error) => { setImmediate(() => { throw error; }); });`;

const PolicyInfoShape = z
  .object({
    id: z.string().min(1),
    effect: z.enum(['permit', 'forbid']),
    file: z.string(),
    text: z.string(),
    annotations: z.record(z.string(), z.string()),
  })
  .strict();

/** What a worker may answer; anything else is refused as garbage. */
const Answer = z
  .object({
    id: z.number().int(),
    inspection: z.union([
      z.object({ readError: z.string() }).strict(),
      z
        .object({
          candidate: z
            .object({
              realDir: z.string(),
              files: z.map(z.string(), z.string()),
              manifest: PolicyManifest.optional(),
              contentHash: z.string().regex(/^[0-9a-f]{64}$/),
            })
            .strict(),
          manifestError: z.string().optional(),
          parsed: z.union([
            z.object({ policies: z.array(PolicyInfoShape) }).strict(),
            z.object({ error: z.string() }).strict(),
          ]),
          validationError: z.string().optional(),
          ms: z.number(),
        })
        .strict(),
    ]),
  })
  .strict();

interface Pending {
  readonly resolve: (answer: CheckedInspection) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Runs `inspectPolicies` in a worker thread (Cedar's parse and schema validation take 10–200 ms
 * of CPU, which the gateway's event loop must not wait for).
 *
 * Fails closed: a worker that dies, throws, answers something malformed or does not answer in
 * `timeoutMs` rejects every pending inspection (the engine refuses the reload and keeps the set
 * in force) and is ended; the next inspection starts a fresh one.
 */
export class PolicyChecker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: PolicyCheckerOptions = {}) {}

  /** Starts the thread now (and has it inspect `warmDir`, so its Cedar is compiled before the first reload). */
  start(warmDir?: string): void {
    if (warmDir === undefined) this.running();
    else this.inspect(warmDir).catch(() => {});
  }

  /** Reads and checks `dir` in the worker. */
  inspect(dir: string): Promise<CheckedInspection> {
    if (this.closed) return Promise.reject(new Error('the policy checker is closed'));
    const worker = this.running();
    const id = this.nextId++;
    return new Promise<CheckedInspection>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(worker, new Error(`no answer within ${this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)),
        this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      );
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      worker.postMessage({ id, dir });
    });
  }

  /** Ends the worker; pending inspections are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (worker) {
      this.fail(worker, new Error('the policy checker is closing'));
    }
  }

  private running(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(BOOT, {
      eval: true,
      workerData: {
        tsxApi: TSX_API,
        entry: (this.options.url ?? new URL('./check-worker.ts', import.meta.url)).href,
        data: this.options.data,
      },
    });
    worker.unref();
    worker.on('message', (message: unknown) => this.answer(worker, message));
    worker.on('messageerror', (error) => this.fail(worker, error));
    worker.on('error', (error) => this.fail(worker, error));
    worker.on('exit', (code) => this.fail(worker, new Error(`the worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private answer(worker: Worker, message: unknown): void {
    // A worker already ended (failed, timed out, closing) has no say: its late messages are dropped.
    if (this.worker !== worker) return;
    const parsed = Answer.safeParse(message);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      this.fail(
        worker,
        // Stryker disable next-line OptionalChaining,StringLiteral: a failed parse always has a first issue, and its path is one key deep (the union's issues stop at `inspection`), so the separator never shows
        new Error(`the worker answered garbage (${issue?.path.join('.') || '(root)'}: ${issue?.message})`),
      );
      return;
    }
    const pending = this.pending.get(parsed.data.id);
    if (!pending) return;
    // Stryker disable next-line CallExpression: a settled inspection left in the map is only rejected again later, which does nothing (memory only)
    this.pending.delete(parsed.data.id);
    clearTimeout(pending.timer);
    pending.resolve({ inspection: parsed.data.inspection as PolicyInspection, threadId: worker.threadId });
  }

  /** Rejects everything pending on `worker` and ends it (once). */
  private fail(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const failure = new Error(`the policy check worker failed: ${error.message}`, { cause: error });
    for (const [id, pending] of this.pending) {
      // Stryker disable next-line CallExpression: a rejected inspection left in the map is only rejected again later, which does nothing (memory only)
      this.pending.delete(id);
      // Stryker disable next-line CallExpression: the timer, unref'd, would only call fail() for a worker already ended, which returns at once
      clearTimeout(pending.timer);
      pending.reject(failure);
    }
    void worker.terminate().catch(() => {});
  }
}
