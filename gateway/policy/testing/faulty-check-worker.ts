import { parentPort, workerData } from 'node:worker_threads';
import { inspectPolicies } from '../check';

/**
 * A policy check worker for tests: answers like the real one (`check-worker.ts`) while the
 * shared `mode` cell holds `honest`, and fails in the chosen way otherwise. The test flips the
 * cell at any time (it is shared memory), also across the fresh workers that replace dead ones.
 */
export const FAULTS = ['honest', 'exit', 'throw', 'garbage', 'hang', 'forbid-without-reason'] as const;
export type Fault = (typeof FAULTS)[number];

parentPort?.on('message', (request: { readonly id: number; readonly dir: string }) => {
  const mode = (workerData as { data: { mode: Int32Array } }).data.mode;
  const fault = FAULTS[Atomics.load(mode, 0)] ?? 'honest';
  switch (fault) {
    case 'honest':
      parentPort!.postMessage({ id: request.id, inspection: inspectPolicies(request.dir) });
      return;
    case 'exit':
      process.exit(7);
      return;
    case 'throw':
      throw new Error('the check worker broke');
    case 'garbage':
      parentPort!.postMessage({ id: request.id, inspection: { candidate: 'not a candidate', parsed: 42 } });
      return;
    case 'hang':
      return;
    case 'forbid-without-reason': {
      // A well-formed answer that claims a forbid without a valid @reason passed the checks.
      const inspection = inspectPolicies(request.dir);
      if ('candidate' in inspection && 'policies' in inspection.parsed) {
        const policies = inspection.parsed.policies.map((policy) =>
          policy.effect === 'forbid'
            ? { ...policy, annotations: { ...policy.annotations, reason: 'BECAUSE' } }
            : policy,
        );
        parentPort!.postMessage({ id: request.id, inspection: { ...inspection, parsed: { policies } } });
      }
      return;
    }
  }
});
