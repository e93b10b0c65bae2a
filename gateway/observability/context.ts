import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

/** Gateway phases reported in `Server-Timing` and the request log. */
export type Phase = 'auth' | 'policy' | 'audit' | 'upstream';

/** What the gateway learns about one request while it runs. */
export interface RequestObservation {
  readonly requestId: string;
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number;
  /** Milliseconds spent per phase (summed when a phase runs more than once). */
  readonly phases: Partial<Record<Phase, number>>;
  /** The access decision the request led to, when it led to one. */
  decision: 'allow' | 'deny' | undefined;
  /** The matched route pattern (`/v1/chat/completions`), once routing has happened. */
  route: string | undefined;
  /** Whether the upstream's first event came (`ok`) or it failed first (`error`). */
  upstreamOutcome: 'ok' | 'error' | undefined;
}

const storage = new AsyncLocalStorage<RequestObservation>();

/** Runs `body` (an HTTP request's handling) with a fresh observation every phase reports into. */
export function observeRequest<T>(requestId: string, body: () => T): T {
  return storage.run(
    {
      requestId,
      startedAt: performance.now(),
      phases: {},
      decision: undefined,
      route: undefined,
      upstreamOutcome: undefined,
    },
    body,
  );
}

/** The observation of the request being handled, if any. */
export function currentRequest(): RequestObservation | undefined {
  return storage.getStore();
}

/** Adds `ms` to `phase` of the current request. */
export function recordPhase(phase: Phase, ms: number): void {
  const observation = storage.getStore();
  if (observation) observation.phases[phase] = (observation.phases[phase] ?? 0) + ms;
}

/** Records the access decision of the current request. */
export function recordDecision(effect: 'allow' | 'deny'): void {
  const observation = storage.getStore();
  if (observation) observation.decision = effect;
}

/** Records how long the upstream took to its first event. */
export function recordUpstreamFirstByte(outcome: 'ok' | 'error', ms: number): void {
  const observation = storage.getStore();
  if (!observation) return;
  observation.phases.upstream = (observation.phases.upstream ?? 0) + ms;
  observation.upstreamOutcome = outcome;
}

/** Times a synchronous step as `phase`. */
export function timePhase<T>(phase: Phase, body: () => T): T {
  const start = performance.now();
  try {
    return body();
  } finally {
    recordPhase(phase, performance.now() - start);
  }
}

/** Times an asynchronous step as `phase` (wall time, including waits). */
export async function timePhaseAsync<T>(phase: Phase, body: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await body();
  } finally {
    recordPhase(phase, performance.now() - start);
  }
}

/**
 * The `Server-Timing` value for an observation (W3C Server Timing): each phase, then `total`
 * (time in the gateway so far). Durations in milliseconds, three decimals.
 */
export function serverTiming(observation: RequestObservation): string {
  let value = '';
  const phases = observation.phases;
  for (const phase in phases) value += `${phase};dur=${milliseconds(phases[phase as Phase]!)}, `;
  return `${value}total;dur=${milliseconds(performance.now() - observation.startedAt)}`;
}

/** `ms` with at most three decimals (microseconds), as `toFixed(3)` would print it but without the trailing zeros. */
function milliseconds(ms: number): string {
  return String(Math.round(ms * 1000) / 1000);
}
