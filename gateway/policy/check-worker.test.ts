import { EventEmitter } from 'node:events';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { inspectPolicies } from './check';
import { DEFAULT_POLICIES_DIR } from './engine';

/**
 * The check thread's message loop (issue 16), run in this process with a stand-in for its port:
 * each request is answered with its own id and the inspection of its folder.
 */
class Port extends EventEmitter {
  readonly posted: unknown[] = [];
  postMessage(message: unknown): void {
    this.posted.push(message);
  }
}

let dir: string | undefined;
afterEach(() => {
  vi.doUnmock('node:worker_threads');
  vi.resetModules();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('check-worker', () => {
  it('answers each request with its id and the inspection of its folder', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-check-worker-'));
    cpSync(DEFAULT_POLICIES_DIR, dir, { recursive: true });
    const port = new Port();
    vi.resetModules();
    vi.doMock('node:worker_threads', () => ({ parentPort: port }));
    await import('./check-worker');
    expect(port.listenerCount('message')).toBe(1);

    port.emit('message', { id: 41, dir });
    port.emit('message', { id: 42, dir: join(dir, 'missing') });
    expect(port.posted).toHaveLength(2);
    const [first, second] = port.posted as { id: number; inspection: Record<string, unknown> }[];
    const expected = inspectPolicies(dir);
    expect(first?.id).toBe(41);
    expect({ ...first?.inspection, ms: 0 }).toEqual({ ...expected, ms: 0 });
    expect(second).toEqual({ id: 42, inspection: inspectPolicies(join(dir, 'missing')) });
  });
});
