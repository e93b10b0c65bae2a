import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/**
 * Where a gateway's CPU goes, by category: reads a V8 `.cpuprofile` (from
 * `BENCH_GATEWAY_PROFILE=<folder> npm run bench:gateway`) and sums self time by package or module
 * (`fastify`, `pino`, `zod`, `node:crypto`, `gateway/audit/…`, GC, …), since under load no single
 * function stands out. Built-in functions without a script (a native `verify`, `writev`) count
 * towards the caller's category.
 *
 * Usage: `tsx bench/gateway/profile-categories.ts <file.cpuprofile> [--calls N] [--from S --to S]`
 * `--from`/`--to` keep the samples between those seconds since the profile's start (default: all
 * of it); `--calls` (default: from a file name ending `<N>calls.cpuprofile`, as the bench writes
 * them) divides by the calls answered in the window to print µs per call.
 */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    calls: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    top: { type: 'string', default: '30' },
    /** Measured main-thread CPU per call (µs): shares are scaled to it (the profile counts descheduled time too). */
    cpu: { type: 'string' },
  },
});
const file = positionals[0];
if (!file) throw new Error('usage: profile-categories.ts <file.cpuprofile> [--calls N] [--from S --to S]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

/** The category of a script URL, or undefined for a built-in without one. */
function categoryOfUrl(url: string, name: string): string | undefined {
  if (!url) {
    if (name === '(garbage collector)') return 'GC';
    if (name === '(program)') return '(program: V8/native outside JS)';
    if (name === '(idle)') return '(idle)';
    if (name === '(root)') return '(root)';
    return undefined;
  }
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) {
    const path = url.slice('node:'.length).replace(/^internal\//, '');
    if (/^(crypto|webcrypto)/.test(path)) return 'node:crypto';
    if (/^(_http|http)/.test(path)) return 'node:http';
    if (/^(net|stream_base|dns|tcp)/.test(path)) return 'node:net';
    if (/^(streams|stream|webstreams)/.test(path)) return 'node:streams';
    if (/^(process\/task_queues|process\/next_tick|timers|async_hooks|process\/promises)/.test(path)) {
      return 'node:microtasks/timers';
    }
    if (/^(url|querystring)/.test(path)) return 'node:url';
    if (/^(buffer|util|encoding|validators|errors)/.test(path)) return 'node:buffer/util';
    return `node:${path.split('/')[0]}`;
  }
  const gateway = url.match(/\/(gateway|shared|bench)\/(.*)$/);
  if (gateway) {
    const parts = gateway[2]!.split('/');
    return `${gateway[1]}/${parts.length > 1 ? parts[0] + '/' : ''}${parts.at(-1)!.replace(/\.[cm]?[tj]s$/, '')}`;
  }
  return url;
}

const categoryCache = new Map<number, string>();
function categoryOf(id: number): string {
  const cached = categoryCache.get(id);
  if (cached) return cached;
  const node = byId.get(id)!;
  let category = categoryOfUrl(node.callFrame.url, node.callFrame.functionName);
  if (category === undefined) {
    const up = parent.get(id);
    category = up === undefined ? '(native)' : categoryOf(up);
  }
  categoryCache.set(id, category);
  return category;
}

// Sample times.
const times: number[] = [];
let clock = profile.startTime;
for (const delta of profile.timeDeltas) {
  clock += delta;
  times.push(clock);
}
const seconds = (index: number) => (times[index]! - profile.startTime) / 1e6;

// The window: given, or the whole profile (the bench profiles only its throughput windows).
const from = args.from !== undefined ? Number(args.from) : 0;
const to = args.to !== undefined ? Number(args.to) : Number.POSITIVE_INFINITY;

const self = new Map<string, number>();
const functions = new Map<string, number>();
let total = 0;
let busyTotal = 0;
profile.samples.forEach((id, index) => {
  const at = seconds(index);
  if (at < from || at > to) return;
  const micros = profile.timeDeltas[index + 1] ?? 0;
  const category = categoryOf(id);
  self.set(category, (self.get(category) ?? 0) + micros);
  total += micros;
  if (category !== '(idle)') busyTotal += micros;
  const node = byId.get(id)!;
  const key = `${node.callFrame.functionName || '(anonymous)'} ${categoryOf(id)}:${node.callFrame.lineNumber + 1}`;
  functions.set(key, (functions.get(key) ?? 0) + micros);
});

const named = /(\d+)calls\.cpuprofile$/.exec(file);
const calls = args.calls ? Number(args.calls) : named ? Number(named[1]) : undefined;
const windowSeconds = Math.min(to, seconds(times.length - 1)) - from;
console.log(
  `window ${from.toFixed(1)}–${(from + windowSeconds).toFixed(1)} s: ${(total / 1e3).toFixed(0)} ms sampled, ` +
    `${(busyTotal / 1e3).toFixed(0)} ms busy (${((busyTotal / 1e6 / Math.max(windowSeconds, 1e-9)) * 100).toFixed(0)} % of a core)` +
    (calls ? `, ${calls} calls → ${(busyTotal / calls).toFixed(0)} µs busy per call` : ''),
);
const print = (title: string, entries: Map<string, number>, limit: number) => {
  console.log(`\n${title}`);
  for (const [name, micros] of [...entries.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
    const share = ((micros / busyTotal) * 100).toFixed(1).padStart(5);
    const perCall = calls ? `${(micros / calls).toFixed(1).padStart(7)} µs/call` : '';
    console.log(`${share} % ${perCall}  ${name}`);
  }
};
self.delete('(idle)');
print('self time by category (% of busy)', self, 60);

/** The categories issue 15 asks about, each a set of the categories above. */
const GROUPS: readonly (readonly [string, RegExp])[] = [
  ['ECDSA verify and hashing (node:crypto, jose, ecdsa-sig-formatter)', /^(node:crypto|jose|ecdsa-sig-formatter)$/],
  ['socket I/O (node:net: writes of replies and upstream requests)', /^node:net$/],
  ['audit (canonical JSON, hash, SQLite/PostgreSQL, fsync)', /^(gateway\/store\/|gateway\/audit\/|node:fs$|pg|pg-.*)/],
  ['GC', /^GC$/],
  [
    'async machinery (microtasks, timers, events, streams, AbortSignal)',
    /^node:(microtasks\/timers|events|event_target|streams|abort_controller|async_.*|string_decoder)$/,
  ],
  [
    'upstream client (undici, llhttp wasm) and SSE parsing',
    /^(undici|wasm:.*|gateway\/chat\/(upstream|sse-reader|openai-upstream|upstreams))$/,
  ],
  [
    'HTTP server (node:http) and Fastify routing, hooks, reply',
    /^(node:http|fastify|find-my-way|secure-json-parse|light-my-request|avvio|@fastify\/(?!rate-limit).*|fast-.*)$/,
  ],
  [
    'rate limiter (@fastify/rate-limit, toad-cache, quotas)',
    /^(@fastify\/rate-limit|toad-cache|gateway\/limits\/.*|ioredis|redis-.*)$/,
  ],
  ['request body (zod, chat request checks)', /^(zod|gateway\/chat\/(request|parameters))$/],
  ['auth (DPoP, token and enrolment caches)', /^gateway\/auth\/.*$/],
  ['policy and access (Cedar cache, access records)', /^(gateway\/policy\/.*|gateway\/access|gateway\/catalog)$/],
  ['completion route (accumulate, reply body)', /^gateway\/chat\/completions-route$/],
  [
    'metrics, Server-Timing, request context (prom-client, observability)',
    /^(prom-client|gateway\/observability\/.*|node:perf)$/,
  ],
  ['V8 outside JS ((program))', /^\(program/],
];
const grouped = new Map<string, number>();
for (const [category, micros] of self) {
  const group =
    GROUPS.find(([, pattern]) => pattern.test(category))?.[0] ??
    'other (node:buffer/util, node:url, gateway/server, …)';
  grouped.set(group, (grouped.get(group) ?? 0) + micros);
}
console.log(
  `\nby issue-15 category${args.cpu ? ` (shares scaled to ${args.cpu} µs of main-thread CPU per call)` : ''}`,
);
for (const [group, micros] of [...grouped.entries()].sort((a, b) => b[1] - a[1])) {
  const share = micros / busyTotal;
  const perCall = args.cpu
    ? `${(share * Number(args.cpu)).toFixed(0).padStart(5)} µs/call`
    : calls
      ? `${(micros / calls).toFixed(0).padStart(5)} µs/call (profile)`
      : '';
  console.log(`${(share * 100).toFixed(1).padStart(5)} % ${perCall}  ${group}`);
}
print('self time by function', functions, Number(args.top));
