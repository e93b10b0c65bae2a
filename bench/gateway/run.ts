import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Pool } from 'undici';
import type { CatalogFile } from '../../gateway/catalog';
import { DEFAULT_POLICIES_DIR } from '../../gateway/policy/engine';
import { startTestIdentityProvider, type TestIdentityProvider } from '../../gateway/testing/identity-provider';
import { freePort, startTestPostgres, startTestRedis } from '../../gateway/testing/services';
import { directCall, gatewayCall, poolFor, proofFor, quantile, signInMany, type BenchSession } from './clients';
import { BenchProcess } from './processes';
import type { ChildRole, ProbeCall, ProbeSession } from './protocol';

/**
 * `npm run bench:gateway`: the gateway's overhead, throughput and fan-out on this machine,
 * each figure beside its target (issues 10 and 15). Loopback only, bounded in time.
 *
 * Processes: this one generates load and owns the test identity provider; a trivial
 * OpenAI-compatible upstream and each gateway instance run in their own child process.
 * Options: --seconds N (each throughput window, default 5), --pairs N (latency pairs, 2000),
 * --subscribers N (fan-out, 1000), --connections N (64), --skip-cluster, --skip-fanout,
 * --fanout-only (only the fan-out, about a minute), --edits N (policy edits of the fan-out, 10),
 * --write (replace the figures in docs/performance.md; with --fanout-only, only the two fan-out
 * rows). BENCH_GATEWAY_PROFILE=<folder> writes a V8 CPU profile of the gateway during each
 * one-instance throughput window there, named with the calls answered in it;
 * `tsx bench/gateway/profile-categories.ts <file>` sums it by category.
 */
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    pairs: { type: 'string', default: '2000' },
    subscribers: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '64' },
    'skip-cluster': { type: 'boolean', default: false },
    'skip-fanout': { type: 'boolean', default: false },
    'fanout-only': { type: 'boolean', default: false },
    edits: { type: 'string', default: '10' },
    write: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const PAIRS = Number(args.pairs);
const SUBSCRIBERS = Number(args.subscribers);
const CONNECTIONS = Number(args.connections);
const EDITS = Number(args.edits);
/** Loops of chat calls during the fan-out ("other requests"), and how long they run alone first. */
const PROBE_LOOPS = 4;
const BASELINE_MS = 3000;
/** Milliseconds on a clock every benchmark process shares. */
const clock = () => performance.timeOrigin + performance.now();
const EDIT_FILE = 'zz-bench-edit.cedar';
const DOCS = fileURLToPath(new URL('../../docs/performance.md', import.meta.url));

/** Limits raised so the benchmark measures the work, not the refusals (the limiter itself still runs). */
const BENCH_LIMITS = {
  perAddress: { max: 100_000_000, windowMs: 60_000 },
  perUser: { max: 100_000_000, windowMs: 60_000 },
  perDevice: { max: 100_000_000, windowMs: 60_000 },
  replayEntriesPerDevice: 1_000_000,
  challengesPerUser: 100,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');

function benchCatalog(upstreamUrl: string): CatalogFile {
  const model = (id: string, name: string) => ({
    id,
    name,
    demo: false,
    visibility: 'visible' as const,
    upstream: { kind: 'openai' as const, baseUrl: upstreamUrl, model: 'bench' },
    attributes: {
      exportControlled: false,
      suspended: false,
      requiredGroups: ['research'],
      requiresHardware: false,
      requiresCompliantDevice: true,
    },
  });
  return { models: [model('bench-echo', 'Bench echo'), model('bench-echo-2', 'Bench echo 2')] };
}

/** A forbid of bench-echo-2 whose condition flips with `on`, so every user's entitlements change. */
function writeEdit(policiesDir: string, on: boolean): void {
  writeFileSync(
    join(policiesDir, EDIT_FILE),
    `@id("bench-echo-2-suspended")
@reason("MODEL_SUSPENDED")
@title("Model suspended")
@message("{model} is suspended for the benchmark.")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"bench-echo-2")
when { ${on ? 'true' : 'false'} };
`,
  );
}

interface Context {
  readonly dir: string;
  readonly idp: TestIdentityProvider;
  readonly upstreamUrl: string;
  readonly policiesDir: string;
}

function gatewayRole(
  context: Context,
  stateDir: string,
  extra: { port?: number; publicUrl?: string; shared?: { postgresUrl: string; redisUrl: string } } = {},
): ChildRole {
  const { idp } = context;
  return {
    kind: 'gateway',
    options: {
      stateDir,
      ...(extra.port !== undefined ? { port: extra.port } : {}),
      ...(extra.publicUrl ? { publicUrl: extra.publicUrl } : {}),
      policiesDir: context.policiesDir,
      catalog: benchCatalog(context.upstreamUrl),
      identityProvider: { issuer: idp.issuer, jwksUri: idp.jwksUri, audience: idp.audience, caCertPem: idp.caCertPem },
      discovery: {
        identityProvider: {
          authority: idp.issuer,
          clientId: 'clearance-desktop',
          scopes: ['openid'],
          protocol: 'OIDC',
        },
      },
      limits: BENCH_LIMITS,
      // Reloads happen only when the benchmark asks, so the fan-out clock starts at the edit.
      reloadDebounceMs: 600_000,
      reconcileSeconds: 0,
      heartbeatSeconds: 600,
    },
    ...(extra.shared ? { shared: { ...extra.shared, limits: BENCH_LIMITS } } : {}),
  };
}

/** Alternates one call straight to the upstream and one through the gateway, one at a time. */
async function alternating(
  upstream: Pool,
  gateway: Pool,
  sessions: readonly BenchSession[],
  publicUrl: string,
  pairs: number,
): Promise<{ direct: number[]; through: number[] }> {
  const direct: number[] = [];
  const through: number[] = [];
  const deadline = performance.now() + SECONDS * 4000;
  for (let index = 0; index < pairs + 200 && performance.now() < deadline; index++) {
    let started = performance.now();
    if ((await directCall(upstream)) !== 200) throw new Error('the upstream refused a direct call');
    const directMs = performance.now() - started;
    const session = sessions[index % sessions.length]!;
    const proof = proofFor(session, 'POST', `${publicUrl}/v1/chat/completions`);
    started = performance.now();
    const status = await gatewayCall(gateway, session, publicUrl, proof);
    const throughMs = performance.now() - started;
    if (status !== 200) throw new Error(`the gateway answered ${status} in the latency run`);
    // The first 200 pairs warm both paths up (JIT, caches, Cedar) and are not counted.
    if (index >= 200) {
      direct.push(directMs);
      through.push(throughMs);
    }
  }
  return { direct, through };
}

interface Throughput {
  readonly rps: number;
  readonly ok: number;
  readonly errors: number;
  readonly statuses: Readonly<Record<string, number>>;
  readonly mainThreadMicrosPerCall?: number;
  readonly processMicrosPerCall?: number;
  /** CPU of this process (the load generator: proofs, HTTP client) per call, in µs. */
  readonly loadMicrosPerCall: number;
  /** CPU of the trivial upstream per call, in µs, when it was watched. */
  readonly upstreamMicrosPerCall?: number;
}

/** BENCH_GATEWAY_PROFILE=<folder>: a V8 CPU profile of the first gateway during each labelled window. */
const PROFILE_DIR = process.env.BENCH_GATEWAY_PROFILE;

/** `CONNECTIONS` loops calling as fast as answers come, for `SECONDS` after a one-second warm-up. */
async function throughput(
  call: (worker: number) => Promise<number>,
  gateways: readonly BenchProcess[] = [],
  watch: { readonly label?: string; readonly upstream?: BenchProcess } = {},
): Promise<Throughput> {
  let measuring = false;
  let stopping = false;
  let ok = 0;
  let errors = 0;
  const statuses: Record<string, number> = {};
  const workers = Array.from({ length: CONNECTIONS }, async (_, worker) => {
    while (!stopping) {
      let status: string;
      try {
        status = String(await call(worker));
      } catch (error) {
        status = (error as Error).name;
      }
      if (!measuring) continue;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === '200') ok++;
      else errors++;
    }
  });
  await sleep(1000);
  const profiled = PROFILE_DIR && watch.label ? gateways[0] : undefined;
  if (profiled) await profiled.call({ kind: 'profile-start' });
  const cpuBefore = await Promise.all(gateways.map((gateway) => gateway.cpu()));
  const upstreamBefore = await watch.upstream?.cpu();
  const loadBefore = process.cpuUsage();
  measuring = true;
  const started = performance.now();
  await sleep(SECONDS * 1000);
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  const load = process.cpuUsage(loadBefore);
  const cpuAfter = await Promise.all(gateways.map((gateway) => gateway.cpu()));
  const upstreamAfter = await watch.upstream?.cpu();
  const calls = ok + errors;
  if (profiled) {
    const path = join(PROFILE_DIR!, `${watch.label}-${calls}calls.cpuprofile`);
    await profiled.call({ kind: 'profile-stop', path });
    console.error(`[bench] profile of the ${watch.label} window: ${path}`);
  }
  stopping = true;
  await Promise.all(workers);
  const perCall = (micros: number) => micros / Math.max(1, calls);
  const spent = (key: 'mainThreadMicros' | 'processMicros') =>
    perCall(cpuAfter.reduce((sum, after, index) => sum + after[key] - cpuBefore[index]![key], 0));
  return {
    rps: calls / elapsed,
    ok,
    errors,
    statuses,
    loadMicrosPerCall: perCall(load.user + load.system),
    ...(upstreamBefore && upstreamAfter
      ? { upstreamMicrosPerCall: perCall(upstreamAfter.processMicros - upstreamBefore.processMicros) }
      : {}),
    ...(gateways.length > 0
      ? { mainThreadMicrosPerCall: spent('mainThreadMicros'), processMicrosPerCall: spent('processMicros') }
      : {}),
  };
}

/**
 * Fresh proofs signed before a throughput window, so the load generator's ECDSA signing
 * (≈ 40–50 µs a call) does not compete with the gateway for the 2 cores while it is measured.
 * Each is used once, within seconds of its `iat` (the gateway accepts 60 s); when a session's
 * supply runs out, proofs are signed on the fly again.
 */
class ProofSupply {
  private readonly proofs = new Map<BenchSession, string[]>();

  constructor(
    sessions: readonly BenchSession[],
    private readonly htu: string,
    total: number,
  ) {
    const each = Math.ceil(total / sessions.length);
    for (const session of sessions) {
      this.proofs.set(
        session,
        Array.from({ length: each }, () => proofFor(session, 'POST', htu)),
      );
    }
  }

  next(session: BenchSession): string {
    return this.proofs.get(session)?.pop() ?? proofFor(session, 'POST', this.htu);
  }
}

/** Proofs signed ahead for one window: 4,000 calls a second, beyond any figure seen on 2 cores. */
const presign = (sessions: readonly BenchSession[], publicUrl: string) =>
  new ProofSupply(sessions, `${publicUrl}/v1/chat/completions`, 4000 * (SECONDS + 1));

/** One open `GET /v1/events` stream, counting `entitlements.changed` events. */
interface Subscriber {
  events: number;
  lastAt: number;
  close(): void;
}

async function subscribe(pool: Pool, session: BenchSession, publicUrl: string): Promise<Subscriber> {
  const response = await pool.request({
    method: 'GET',
    path: '/v1/events',
    headers: { authorization: `DPoP ${session.token}`, dpop: proofFor(session, 'GET', `${publicUrl}/v1/events`) },
  });
  if (response.statusCode !== 200) throw new Error(`GET /v1/events answered ${response.statusCode}`);
  const subscriber: Subscriber = { events: 0, lastAt: 0, close: () => response.body.destroy() };
  let buffer = '';
  response.body.setEncoding('utf8');
  response.body.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (event.includes('event: entitlements.changed')) {
        subscriber.events++;
        subscriber.lastAt = clock();
      }
    }
  });
  response.body.on('error', () => {});
  return subscriber;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface FanOutEdit {
  /** Edit sent → last subscriber has the event. */
  readonly lastNotifiedMs: number;
  /** The gateway's own reload plus fan-out time. */
  readonly gatewayMs: number;
  /** Of which synchronous on the gateway's event loop before the fan-out starts. */
  readonly reloadSyncMs: number;
  /** Reading and validating the candidate set (wherever it runs). */
  readonly validateMs: number;
  /** Longest event-loop stall in the gateway from the reload call to the end of the fan-out. */
  readonly maxStallMs: number;
  /** Longest event-loop stall in this process (the load generator) in the same window. */
  readonly clientStallMs: number;
  readonly probes: number;
  readonly probeP50: number;
  readonly probeP99: number;
  readonly probeMax: number;
}

interface FanOutResult {
  /** The probe calls without a fan-out (`BASELINE_MS` before the first edit). */
  readonly baselineP50: number;
  readonly baselineP99: number;
  /** Calls per second they made, and the share of one core the gateway's main thread spent meanwhile. */
  readonly baselineRate: number;
  readonly baselineGatewayCpu: number;
  readonly edits: FanOutEdit[];
  /** Every call that ran during one of the fan-outs (each once), in milliseconds. */
  readonly during: number[];
  readonly signInSeconds: number;
  readonly subscribers: number;
}

async function fanOut(context: Context): Promise<FanOutResult> {
  const started = await BenchProcess.start(gatewayRole(context, join(context.dir, 'fanout')));
  try {
    const signInStart = performance.now();
    const sessions = await signInMany(context.idp, started.url, started.url, SUBSCRIBERS, 16);
    const signInSeconds = (performance.now() - signInStart) / 1000;
    const streamPool = poolFor(started.url, SUBSCRIBERS + 8);
    const subscribers: Subscriber[] = [];
    for (let index = 0; index < sessions.length; index += 50) {
      subscribers.push(
        ...(await Promise.all(
          sessions.slice(index, index + 50).map((session) => subscribe(streamPool, session, started.url)),
        )),
      );
    }
    await until(() => subscribers.every((s) => s.events >= 1), 60_000, 'every subscriber to get its first ver');

    // Other requests during the fan-out: four loops of full chat calls, from a process of their
    // own. In this one, the 1,000 streams' events arrive in a burst at every fan-out and held its
    // event loop for 5-25 ms, which the calls' timings then included although the gateway had
    // answered (in real life the streams are a thousand other machines). A call counts for an
    // edit when it was running at any moment between the edit and the last notification (started
    // before the end, ended after the start), so a call held by the reload itself is counted too.
    const prober = await BenchProcess.start({ kind: 'probe' });
    try {
      const probeSessions: ProbeSession[] = sessions.slice(0, PROBE_LOOPS).map((session) => ({
        userId: session.userId,
        token: session.token,
        ath: session.ath,
        jwk: session.jwk as Record<string, unknown>,
        privateJwk: session.key.export({ format: 'jwk' }) as Record<string, unknown>,
      }));
      const probing = await prober.process.call({ kind: 'probe-start', url: started.url, sessions: probeSessions });
      if (probing.kind !== 'probing') throw new Error(`the probe process did not start: ${JSON.stringify(probing)}`);
      await sleep(1000);
      // The same calls without a fan-out, and how busy they keep the gateway's main thread.
      const cpuBefore = await started.process.cpu();
      const baselineFrom = clock();
      await sleep(BASELINE_MS);
      const baselineTo = clock();
      const cpuAfter = await started.process.cpu();
      const windows: { sentAt: number; lastAt: number }[] = [];
      const edits: Omit<FanOutEdit, 'probes' | 'probeP50' | 'probeP99' | 'probeMax'>[] = [];
      const clientStalls = monitorEventLoopDelay({ resolution: 1 });
      for (let edit = 1; edit <= EDITS; edit++) {
        writeEdit(context.policiesDir, edit % 2 === 1);
        clientStalls.reset();
        clientStalls.enable();
        const sentAt = clock();
        const reload = started.process.call({ kind: 'reload' });
        await until(() => subscribers.every((s) => s.events >= edit + 1), 30_000, `edit ${edit} to reach everyone`);
        const lastAt = Math.max(...subscribers.map((s) => s.lastAt));
        const reply = await reload;
        if (reply.kind !== 'reloaded' || !reply.ok) throw new Error(`reload failed: ${JSON.stringify(reply)}`);
        await sleep(300);
        clientStalls.disable();
        windows.push({ sentAt, lastAt });
        edits.push({
          lastNotifiedMs: lastAt - sentAt,
          gatewayMs: reply.ms,
          reloadSyncMs: reply.syncMs,
          validateMs: reply.validateMs,
          maxStallMs: reply.maxStallMs,
          clientStallMs: clientStalls.max / 1e6,
        });
        await sleep(400);
      }
      const result = await prober.process.call({ kind: 'probe-stop' });
      if (result.kind !== 'probes') throw new Error(`the probe process failed: ${JSON.stringify(result)}`);
      if (Object.keys(result.failures).length > 0) {
        throw new Error(`calls during the fan-out failed: ${JSON.stringify(result.failures)}`);
      }
      const ms = (call: ProbeCall) => call.end - call.at;
      const baseline = result.calls.filter((call) => call.at >= baselineFrom && call.end <= baselineTo);
      const pooled = new Set<ProbeCall>();
      const perEdit = windows.map(({ sentAt, lastAt }) => {
        const overlapping = result.calls.filter((call) => call.at <= lastAt && call.end >= sentAt);
        for (const call of overlapping) pooled.add(call);
        return overlapping.map(ms);
      });
      for (const subscriber of subscribers) subscriber.close();
      await streamPool.destroy();
      return {
        baselineP50: quantile(baseline.map(ms), 0.5),
        baselineP99: quantile(baseline.map(ms), 0.99),
        baselineRate: baseline.length / ((baselineTo - baselineFrom) / 1000),
        baselineGatewayCpu:
          (cpuAfter.mainThreadMicros - cpuBefore.mainThreadMicros) / 1000 / (baselineTo - baselineFrom),
        edits: edits.map((edit, index) => {
          const during = perEdit[index]!;
          return {
            ...edit,
            probes: during.length,
            probeP50: quantile(during, 0.5),
            probeP99: quantile(during, 0.99),
            probeMax: during.length ? Math.max(...during) : Number.NaN,
          };
        }),
        during: [...pooled].map(ms),
        signInSeconds,
        subscribers: subscribers.length,
      };
    } finally {
      await prober.process.stop();
    }
  } finally {
    await started.process.stop();
    writeEdit(context.policiesDir, false);
  }
}

/**
 * The two table rows of the fan-out (issue 10 item 3), short enough not to widen the table;
 * `note` ends the second one (the load). The per-edit figures go to `fanOutDetails`.
 */
function fanOutRows(fan: FanOutResult, note = ''): [string, string] {
  const worst = (pick: (edit: FanOutEdit) => number) => Math.max(...fan.edits.map(pick));
  return [
    `| fan-out to ${fan.subscribers} subscribers: edit → last one notified | ≤ 1 s | worst ${Math.round(worst((e) => e.lastNotifiedMs))} ms ` +
      `of ${fan.edits.length} edits (median ${Math.round(
        quantile(
          fan.edits.map((e) => e.lastNotifiedMs),
          0.5,
        ),
      )} ms); the set is read and ` +
      `validated in a worker (≤ ${Math.round(worst((e) => e.validateMs))} ms), ≤ ${fixed(
        worst((e) => e.reloadSyncMs),
        1,
      )} ms on the event loop |`,
    `| p99 of other requests during the fan-out | < 50 ms | ${fixed(quantile(fan.during, 0.99), 1)} ms over ${fan.during.length} calls ` +
      `(p50 ${fixed(quantile(fan.during, 0.5), 1)}, max ${fixed(Math.max(...fan.during), 1)}); ${fixed(fan.baselineP99, 1)} ms without a fan-out ` +
      `(${Math.round(fan.baselineRate)} calls/s, gateway ${Math.round(fan.baselineGatewayCpu * 100)} % busy); longest stall ` +
      `${Math.round(worst((e) => e.maxStallMs))} ms${note} |`,
  ];
}

/** The per-edit figures behind the fan-out rows, one line each. */
function fanOutDetails(fan: FanOutResult): string[] {
  const list = (pick: (edit: FanOutEdit) => number, digits = 0) =>
    fan.edits.map((e) => fixed(pick(e), digits)).join(', ');
  return [
    `edit → last notified: ${list((e) => e.lastNotifiedMs)} ms; gateway reload + fan-out ${list((e) => e.gatewayMs)} ms`,
    `reading and validating the set (worker): ${list((e) => e.validateMs)} ms; on the event loop ${list((e) => e.reloadSyncMs, 1)} ms`,
    `largest call per edit: ${list((e) => e.probeMax, 1)} ms; without a fan-out p50 ${fixed(fan.baselineP50, 1)} ms, ` +
      `${Math.round(fan.baselineRate)} calls/s from ${PROBE_LOOPS} loops`,
    `longest event-loop stall, reload → last notification: gateway ${list((e) => e.maxStallMs)} ms, ` +
      `load generator ${list((e) => e.clientStallMs)} ms`,
  ];
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'clearance-bench-gateway-'));
  const policiesDir = join(dir, 'policies');
  cpSync(DEFAULT_POLICIES_DIR, policiesDir, { recursive: true });
  writeEdit(policiesDir, false);
  const idp = await startTestIdentityProvider();
  const upstream = await BenchProcess.start({ kind: 'upstream' });
  const context: Context = { dir, idp, upstreamUrl: upstream.url, policiesDir };
  const cleanups: (() => Promise<unknown>)[] = [() => upstream.process.stop(), () => idp.close()];
  const lines: string[] = [];
  const say = (line: string) => {
    console.log(line);
    lines.push(line);
  };
  try {
    if (args['fanout-only']) {
      console.error(`[bench] fan-out only, to ${SUBSCRIBERS} subscribers`);
      const fan = await fanOut(context);
      const load = `load average ${loadBefore.map((l) => l.toFixed(1)).join(' / ')} before and ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' / ')} after (1 / 5 / 15 min)`;
      const rows = fanOutRows(fan, `; load ${loadBefore[0]!.toFixed(1)}`);
      for (const row of rows) console.log(row);
      console.log(`Taken ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${load}.`);
      for (const line of fanOutDetails(fan)) console.log(`- ${line}`);
      if (args.write) {
        const docs = readFileSync(DOCS, 'utf8');
        const replaced = docs
          .split('\n')
          .map((line) =>
            line.startsWith('| fan-out to ')
              ? rows[0]!
              : line.startsWith('| p99 of other requests during')
                ? rows[1]!
                : line,
          )
          .join('\n');
        if (replaced === docs) throw new Error('docs/performance.md has no fan-out rows to replace');
        const prettier = await import('prettier');
        const options = (await prettier.resolveConfig(DOCS)) ?? {};
        writeFileSync(DOCS, await prettier.format(replaced, { ...options, filepath: DOCS }));
        console.error('[bench] the fan-out rows of docs/performance.md updated');
      }
      return;
    }
    // One instance, embedded stores (SQLite in the state folder, memory).
    console.error('[bench] one instance (SQLite): latency and throughput');
    const single = await BenchProcess.start(gatewayRole(context, join(dir, 'single')));
    cleanups.unshift(() => single.process.stop());
    const sessions = await signInMany(idp, single.url, single.url, CONNECTIONS);
    const upstreamLatencyPool = poolFor(upstream.url, 1);
    const gatewayLatencyPool = poolFor(single.url, 1);
    const cpuBefore = await single.process.cpu();
    const latency = await alternating(upstreamLatencyPool, gatewayLatencyPool, sessions, single.url, PAIRS);
    const cpuAfter = await single.process.cpu();
    const sequentialCpu = (cpuAfter.mainThreadMicros - cpuBefore.mainThreadMicros) / (latency.through.length + 200);
    await Promise.all([upstreamLatencyPool.destroy(), gatewayLatencyPool.destroy()]);
    const upstreamPool = poolFor(upstream.url, CONNECTIONS);
    const direct = await throughput(() => directCall(upstreamPool), [], { upstream: upstream.process });
    await upstreamPool.destroy();
    const gatewayPool = poolFor(single.url, CONNECTIONS);
    const supply = presign(sessions, single.url);
    const one = await throughput(
      (worker) => {
        const session = sessions[worker % sessions.length]!;
        return gatewayCall(gatewayPool, session, single.url, supply.next(session));
      },
      [single.process],
      { label: 'sqlite-1', upstream: upstream.process },
    );
    await gatewayPool.destroy();
    await single.process.stop();

    console.error(`[bench] fan-out to ${SUBSCRIBERS} subscribers`);
    const fan: FanOutResult = args['skip-fanout']
      ? {
          baselineP50: Number.NaN,
          baselineP99: Number.NaN,
          baselineRate: Number.NaN,
          baselineGatewayCpu: Number.NaN,
          edits: [],
          during: [],
          signInSeconds: 0,
          subscribers: 0,
        }
      : await fanOut(context);

    let cluster: { one: Throughput; two: Throughput } | undefined;
    if (!args['skip-cluster']) {
      console.error('[bench] PostgreSQL + Redis: one and two instances');
      const [postgres, redis] = await Promise.all([startTestPostgres(), startTestRedis()]);
      cleanups.push(
        () => postgres.stop(),
        () => redis.stop(),
      );
      const shared = { postgresUrl: postgres.url, redisUrl: redis.url };
      const publicUrl = `http://127.0.0.1:${await freePort()}`;
      const stateDir = join(dir, 'cluster');
      const [portA, portB] = [await freePort(), await freePort()];
      const a = await BenchProcess.start(gatewayRole(context, stateDir, { port: portA, publicUrl, shared }));
      cleanups.unshift(() => a.process.stop());
      const b = await BenchProcess.start(gatewayRole(context, stateDir, { port: portB, publicUrl, shared }));
      cleanups.unshift(() => b.process.stop());
      const addressA = `http://127.0.0.1:${portA}`;
      const addressB = `http://127.0.0.1:${portB}`;
      const clusterSessions = await signInMany(idp, addressA, publicUrl, CONNECTIONS);
      const poolA = poolFor(addressA, CONNECTIONS);
      const supplyOne = presign(clusterSessions, publicUrl);
      const clusterOne = await throughput(
        (worker) => {
          const session = clusterSessions[worker % clusterSessions.length]!;
          return gatewayCall(poolA, session, publicUrl, supplyOne.next(session));
        },
        [a.process],
        { label: 'postgres-1', upstream: upstream.process },
      );
      await poolA.destroy();
      const halves = [poolFor(addressA, CONNECTIONS / 2), poolFor(addressB, CONNECTIONS / 2)];
      const supplyTwo = presign(clusterSessions, publicUrl);
      const clusterTwo = await throughput(
        (worker) => {
          const session = clusterSessions[worker % clusterSessions.length]!;
          return gatewayCall(halves[worker % 2]!, session, publicUrl, supplyTwo.next(session));
        },
        [a.process, b.process],
        { upstream: upstream.process },
      );
      await Promise.all(halves.map((pool) => pool.destroy()));
      cluster = { one: clusterOne, two: clusterTwo };
    }

    const loadAfter = loadavg();
    const added = (q: number) => quantile(latency.through, q) - quantile(latency.direct, q);
    const describeThroughput = (result: Throughput) =>
      `${Math.round(result.rps).toLocaleString('en-US')} req/s, ${result.errors} errors` +
      (result.errors > 0 ? ` (${JSON.stringify(result.statuses)})` : '');
    say(`<!-- bench:gateway (written by npm run bench:gateway -- --write) -->`);
    say('');
    say(
      `Taken ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} × ${cpus()[0]?.model.trim()}, ` +
        `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(1)).join(' / ')} ` +
        `before and ${loadAfter.map((l) => l.toFixed(1)).join(' / ')} after (1 / 5 / 15 min). ` +
        `${CONNECTIONS} connections, ${SECONDS} s windows, ${latency.through.length} latency pairs, ${fan.subscribers} subscribers.`,
    );
    say('');
    say('| figure | target | measured |');
    say('| --- | --- | --- |');
    say(
      `| added latency, non-streaming, p50 / p99 | ≤ 1 ms / ≤ 5 ms | ${fixed(added(0.5))} ms / ${fixed(added(0.99))} ms ` +
        `(gateway ${fixed(quantile(latency.through, 0.5))} / ${fixed(quantile(latency.through, 0.99))} ms, ` +
        `direct ${fixed(quantile(latency.direct, 0.5))} / ${fixed(quantile(latency.direct, 0.99))} ms) |`,
    );
    say(
      `| gateway main-thread CPU per authenticated call | ≤ 300 µs | ${Math.round(one.mainThreadMicrosPerCall!)} µs at 64 connections, ` +
        `${Math.round(sequentialCpu)} µs one at a time (whole process: ${Math.round(one.processMicrosPerCall!)} µs) |`,
    );
    say(
      `| throughput, ${CONNECTIONS} connections, 1 instance (SQLite) | ≥ 2,500 req/s, 0 errors | ${describeThroughput(one)} ` +
        `(direct to the upstream: ${Math.round(direct.rps).toLocaleString('en-US')} req/s) |`,
    );
    const micros = (value: number | undefined) => (value === undefined ? 'n/a' : `${Math.round(value)} µs`);
    say(
      `| CPU per call of the rest of the bench in that window (2 cores shared) | — | load generator ${micros(one.loadMicrosPerCall)}, ` +
        `upstream ${micros(one.upstreamMicrosPerCall)}, gateway process ${micros(one.processMicrosPerCall)}: ` +
        `${micros(one.loadMicrosPerCall + (one.upstreamMicrosPerCall ?? 0) + (one.processMicrosPerCall ?? 0))} in all ` +
        `(direct run: load generator ${micros(direct.loadMicrosPerCall)}, upstream ${micros(direct.upstreamMicrosPerCall)}) |`,
    );
    if (cluster) {
      say(
        `| throughput, ${CONNECTIONS} connections, 1 instance (PostgreSQL + Redis) | — | ${describeThroughput(cluster.one)}; ` +
          `${Math.round(cluster.one.mainThreadMicrosPerCall!)} µs main-thread CPU per call |`,
      );
      say(
        `| throughput, ${CONNECTIONS} connections, 2 instances (PostgreSQL + Redis) | more than 1 instance | ${describeThroughput(cluster.two)}; ` +
          `${Math.round(cluster.two.mainThreadMicrosPerCall!)} µs main-thread CPU per call (both) |`,
      );
    }
    for (const row of fanOutRows(fan)) say(row);
    for (const line of fanOutDetails(fan)) console.error(`[bench] fan-out: ${line}`);
    say('');
    say(`<!-- /bench:gateway -->`);
    if (args.write) {
      const docs = readFileSync(DOCS, 'utf8');
      const start = docs.indexOf('<!-- bench:gateway');
      const end = docs.indexOf('<!-- /bench:gateway -->');
      if (start < 0 || end < 0) throw new Error('docs/performance.md has no bench:gateway markers');
      const updated = `${docs.slice(0, start)}${lines.join('\n')}${docs.slice(end + '<!-- /bench:gateway -->'.length)}`;
      // Written as Prettier would, so `npm test`'s format check stays green after a --write.
      const prettier = await import('prettier');
      const options = (await prettier.resolveConfig(DOCS)) ?? {};
      writeFileSync(DOCS, await prettier.format(updated, { ...options, filepath: DOCS }));
      console.error('[bench] docs/performance.md updated');
    }
    console.error(`[bench] sign-in of ${fan.subscribers} users took ${fan.signInSeconds.toFixed(1)} s (not a target)`);
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
