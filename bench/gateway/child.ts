import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connectSharedState, type SharedState } from '../../gateway/cluster';
import { startGateway, type GatewayOptions, type RunningGateway } from '../../gateway/server';
import { createPrivateKey, type JsonWebKeyInput } from 'node:crypto';
import type { JWK } from 'jose';
import type { Pool } from 'undici';
import { gatewayCall, poolFor, proofFor } from './clients';
import type { ChildCommand, ChildReply, ChildRole, ProbeCall } from './protocol';

/**
 * One process of the gateway benchmark: the trivial OpenAI-compatible upstream, or one gateway
 * instance. Run by `bench/gateway/run.ts` over IPC, so the load generator, the upstream and
 * each gateway have their own event loop and the gateway's own CPU can be read.
 */
const send = (reply: ChildReply) => process.send!(reply);

/** One streamed completion in a single write: what the gateway asks every upstream for. */
const SSE_BODY = [
  { choices: [{ index: 0, delta: { role: 'assistant', content: 'ok' }, finish_reason: null }] },
  { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
  { choices: [], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } },
]
  .map(
    (chunk) =>
      `data: ${JSON.stringify({ id: 'cmpl-bench', object: 'chat.completion.chunk', created: 0, model: 'bench', ...chunk })}\n\n`,
  )
  .concat('data: [DONE]\n\n')
  .join('');

async function startUpstream(): Promise<string> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      response.end(SSE_BODY);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let gateway: RunningGateway | undefined;
let shared: SharedState | undefined;
let profiler: Session | undefined;
let probing:
  | { stop: boolean; loops: Promise<void>[]; pool: Pool; calls: ProbeCall[]; failures: Record<string, number> }
  | undefined;
/** Milliseconds on a clock every benchmark process shares. */
const clock = () => performance.timeOrigin + performance.now();

async function handle(command: ChildCommand): Promise<ChildReply> {
  switch (command.kind) {
    case 'start': {
      const role: ChildRole = command.role;
      if (role.kind === 'upstream') return { kind: 'started', url: await startUpstream() };
      if (role.kind === 'probe') return { kind: 'started', url: '' };
      if (role.shared) shared = await connectSharedState(role.shared);
      const options = { ...role.options, log: () => {}, ...(shared ? shared.options : {}) } as GatewayOptions;
      gateway = await startGateway(options);
      return { kind: 'started', url: gateway.url, adminToken: gateway.adminToken };
    }
    case 'cpu': {
      const thread = process.threadCpuUsage();
      const all = process.cpuUsage();
      return { kind: 'cpu', mainThreadMicros: thread.user + thread.system, processMicros: all.user + all.system };
    }
    case 'profile-start': {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      // Four samples a millisecond: enough for 1 % categories over a 5 s window, little overhead.
      await profiler.post('Profiler.setSamplingInterval', { interval: 250 });
      await profiler.post('Profiler.start');
      return { kind: 'profiled' };
    }
    case 'profile-stop': {
      const { profile } = await profiler!.post('Profiler.stop');
      profiler!.disconnect();
      profiler = undefined;
      writeFileSync(command.path, JSON.stringify(profile));
      return { kind: 'profiled' };
    }
    case 'reload': {
      // The stall monitor runs from before the call, so a synchronous reload counts as a stall.
      const stalls = monitorEventLoopDelay({ resolution: 1 });
      stalls.enable();
      const started = performance.now();
      const pending = gateway!.reloadPolicies();
      // What runs on the event loop before reloadPolicies first yields.
      const syncMs = performance.now() - started;
      const result = await pending;
      const ms = performance.now() - started;
      stalls.disable();
      const validateMs = gateway!.policy.lastCheck?.ms ?? Number.NaN;
      return { kind: 'reloaded', ok: result.ok, ms, syncMs, validateMs, maxStallMs: stalls.max / 1e6 };
    }
    case 'probe-start': {
      const pool = poolFor(command.url, command.sessions.length);
      const state = {
        stop: false,
        loops: [] as Promise<void>[],
        pool,
        calls: [] as ProbeCall[],
        failures: {} as Record<string, number>,
      };
      state.loops = command.sessions.map(async (probe) => {
        const session = {
          userId: probe.userId,
          token: probe.token,
          ath: probe.ath,
          jwk: probe.jwk as JWK,
          key: createPrivateKey({ key: probe.privateJwk as JsonWebKeyInput['key'], format: 'jwk' }),
        };
        while (!state.stop) {
          const proof = proofFor(session, 'POST', `${command.url}/v1/chat/completions`);
          const at = clock();
          const status = await gatewayCall(pool, session, command.url, proof).catch(
            (error: unknown) => (error as Error).name,
          );
          if (status === 200) state.calls.push({ at, end: clock() });
          else state.failures[status] = (state.failures[status] ?? 0) + 1;
        }
      });
      probing = state;
      return { kind: 'probing' };
    }
    case 'probe-stop': {
      const state = probing;
      probing = undefined;
      if (!state) return { kind: 'probes', calls: [], failures: {} };
      state.stop = true;
      await Promise.all(state.loops);
      await state.pool.destroy();
      return { kind: 'probes', calls: state.calls, failures: state.failures };
    }
    case 'stop': {
      await gateway?.close();
      await shared?.close();
      return { kind: 'stopped' };
    }
  }
}

process.on('message', (command: ChildCommand) => {
  handle(command).then(send, (error: unknown) =>
    send({ kind: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
