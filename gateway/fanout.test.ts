import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from './testing/gateway-harness';
import { GatewayTestClient, SseReader, TestDevice } from './testing/device-client';
import { testPersonas, type TestPersona } from './testing/identity-provider';

/**
 * The fan-out crash repro (issue 15): on Node 20 the gateway died with a V8 fatal error in the
 * deoptimizer on the 3rd–6th policy edit while 500 sessions listened. On the pinned Node this
 * test runs the same load in the test process itself, so a crash fails the run.
 */
const SESSIONS = 500;
const EDITS = 8;
const SUSPENSION_FILE = 'zz-fanout-suspension.cedar';

let harness: GatewayHarness;
const streams: {
  user: string;
  client: GatewayTestClient;
  reader: SseReader;
  controller: AbortController;
}[] = [];

function persona(index: number): TestPersona {
  const base = Object.values(testPersonas)[index % 4]!;
  return { ...base, id: `fanout-${index}`, username: `fanout-${index}@clearance.example` };
}

async function inBatches<T>(count: number, width: number, make: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let start = 0; start < count; start += width) {
    const batch = Array.from({ length: Math.min(width, count - start) }, (_, offset) => make(start + offset));
    results.push(...(await Promise.all(batch)));
  }
  return results;
}

/**
 * Edit `n` forbids haiku-4 for everyone on odd edits and lifts the ban on even ones. The forbid
 * keeps its id (a vanished forbid is refused as a possibly truncated set); only its condition flips.
 */
function writeEdit(n: number): void {
  writeFileSync(
    join(harness.policiesDir, SUSPENSION_FILE),
    `// fan-out test edit ${n}
@id("fanout-haiku-suspended")
@reason("MODEL_SUSPENDED")
@title("Model suspended")
@message("{model} is suspended for the fan-out test.")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"haiku-4")
when { ${n % 2 === 1 ? 'true' : 'false'} };
`,
  );
}

beforeAll(async () => {
  // No file watcher race: the test reloads explicitly after each edit.
  harness = await startGatewayHarness({
    reloadDebounceMs: 60_000,
    heartbeatSeconds: 600,
    // Every session comes from 127.0.0.1 here; one address stands for 500 people.
    limits: { perAddress: { max: 100_000, windowMs: 60_000 } },
  });
  const clients = await inBatches(SESSIONS, 25, async (index) => {
    const client = new GatewayTestClient(harness.gateway.url, await TestDevice.create());
    await client.signIn(await harness.idp.mint(persona(index)));
    return client;
  });
  await inBatches(SESSIONS, 50, async (index) => {
    const client = clients[index]!;
    const controller = new AbortController();
    const response = await client.request('GET', '/v1/events', { signal: controller.signal });
    expect(response.status).toBe(200);
    const reader = new SseReader(response);
    const hello = await reader.next(30_000);
    expect(hello?.event).toBe('entitlements.changed');
    streams.push({ user: `fanout-${index}`, client, reader, controller });
  });
}, 240_000);

afterAll(async () => {
  for (const stream of streams) stream.controller.abort();
  await harness?.close();
});

describe('fan-out to 500 sessions under repeated policy edits', () => {
  it('survives every edit and tells every session each time its entitlements change', async () => {
    expect(streams).toHaveLength(SESSIONS);
    const lastVer = new Map<string, number>();
    for (let edit = 1; edit <= EDITS; edit++) {
      writeEdit(edit);
      const result = await harness.gateway.reloadPolicies();
      expect(result).toMatchObject({ ok: true, revision: edit + 1 });
      const events = await Promise.all(streams.map((stream) => stream.reader.next(30_000)));
      events.forEach((event, index) => {
        expect(event?.event).toBe('entitlements.changed');
        const { ver } = JSON.parse(event!.data) as { ver: number };
        const user = streams[index]!.user;
        expect(ver).toBeGreaterThan(lastVer.get(user) ?? 0);
        lastVer.set(user, ver);
      });
    }
    // Still serving, with the last edit (no suspension) in force.
    const { claims } = await streams[0]!.client.entitlements();
    const haiku = (claims.models as { id: string; status: string }[]).find((m) => m.id === 'haiku-4');
    expect(haiku?.status).toBe('allowed');
    expect(harness.logLines.filter((line) => /failed|internal error/i.test(line))).toEqual([]);
  }, 240_000);
});
