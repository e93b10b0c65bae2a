import type { EventSourceMessage } from 'eventsource-parser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayEventStream, reconnectDelay } from './stream';
import { TestGateway } from './test-gateway';

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('Timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('reconnectDelay', () => {
  const policy = { initialMs: 1000, maxMs: 30_000 };

  it('doubles each attempt and stops at the cap', () => {
    expect(reconnectDelay(0, policy, () => 1)).toBe(1000);
    expect(reconnectDelay(3, policy, () => 1)).toBe(8000);
    expect(reconnectDelay(10, policy, () => 1)).toBe(30_000);
    expect(reconnectDelay(1000, policy, () => 1)).toBe(30_000);
  });

  it('jitters between half and all of the step', () => {
    expect(reconnectDelay(2, policy, () => 0)).toBe(2000);
    const spread = new Set(Array.from({ length: 50 }, () => reconnectDelay(4, policy)));
    expect(spread.size).toBeGreaterThan(10);
    for (const delay of spread) expect(delay).toBeGreaterThanOrEqual(8000);
  });
});

describe('GatewayEventStream', () => {
  let gateway: TestGateway;
  let stream: GatewayEventStream | undefined;

  beforeEach(async () => {
    gateway = await TestGateway.start();
  });
  afterEach(async () => {
    stream?.stop();
    await gateway.stop();
  });

  it('delivers events, and resumes with Last-Event-ID after the gateway drops the stream', async () => {
    const events: EventSourceMessage[] = [];
    const downs: string[] = [];
    let opens = 0;
    stream = new GatewayEventStream({
      fetch: gateway.fetch,
      reconnect: { initialMs: 20, maxMs: 100 },
      onOpen: () => opens++,
      onEvent: (event) => events.push(event),
      onDown: (error) => downs.push(error.message),
    });
    stream.start();
    await until(() => gateway.openStreams === 1 && stream!.connected);
    const id = gateway.push('entitlements.changed', { ver: 9 });
    await until(() => events.length === 1);
    expect(events[0]).toMatchObject({ event: 'entitlements.changed', id, data: '{"ver":9}' });

    gateway.dropStreams();
    await until(() => opens === 2);
    const requests = gateway.seen('/v1/events');
    expect(requests[0]?.headers['last-event-id']).toBeUndefined();
    expect(requests.at(-1)?.headers['last-event-id']).toBe(id);
    expect(requests.at(-1)?.headers.authorization).toBe('DPoP test-token');
    expect(downs.length).toBeGreaterThanOrEqual(1);
  });

  it('reconnects quietly with Last-Event-ID when an open stream ends cleanly', async () => {
    const downs: string[] = [];
    let opens = 0;
    stream = new GatewayEventStream({
      fetch: gateway.fetch,
      reconnect: { initialMs: 20, maxMs: 100 },
      onOpen: () => opens++,
      onEvent: () => undefined,
      onDown: (error) => downs.push(error.message),
    });
    stream.start();
    await until(() => gateway.openStreams === 1 && stream!.connected);
    const id = gateway.push('entitlements.changed', { ver: 2 });
    await until(() => stream!.lastEventId === id);
    gateway.endStreams();
    await until(() => opens === 2 && stream!.connected);
    expect(downs).toEqual([]);
    expect(gateway.seen('/v1/events').at(-1)?.headers['last-event-id']).toBe(id);
  });

  it('honours the server retry interval as the least reconnection delay', async () => {
    const opened: number[] = [];
    stream = new GatewayEventStream({
      fetch: gateway.fetch,
      reconnect: { initialMs: 10, maxMs: 1000 },
      onOpen: () => opened.push(Date.now()),
      onEvent: () => undefined,
      onDown: () => undefined,
    });
    gateway.retryMs = 300;
    stream.start();
    await until(() => opened.length === 1);
    gateway.endStreams();
    await until(() => opened.length === 2);
    expect(opened[1]! - opened[0]!).toBeGreaterThanOrEqual(280);
  });

  it('backs off while the gateway refuses the stream, then connects by itself', async () => {
    gateway.refuseStreams = true;
    const downs: string[] = [];
    stream = new GatewayEventStream({
      fetch: gateway.fetch,
      reconnect: { initialMs: 10, maxMs: 40 },
      onOpen: () => undefined,
      onEvent: () => undefined,
      onDown: (error) => downs.push(error.message),
    });
    stream.start();
    await until(() => downs.length >= 3);
    expect(downs[0]).toMatch(/HTTP 503/);
    expect(stream.connected).toBe(false);
    gateway.refuseStreams = false;
    await until(() => stream!.connected);
  });

  it('reconnects when the stream goes silent past the idle timeout', async () => {
    const downs: string[] = [];
    stream = new GatewayEventStream({
      fetch: gateway.fetch,
      reconnect: { initialMs: 10, maxMs: 20 },
      idleTimeoutMs: 150,
      onOpen: () => undefined,
      onEvent: () => undefined,
      onDown: (error) => downs.push(error.message),
    });
    stream.start();
    await until(() => downs.length >= 1);
    expect(downs[0]).toMatch(/No data on the event stream/);
  });

  it('stops for good when stopped', async () => {
    stream = new GatewayEventStream({
      fetch: gateway.fetch,
      reconnect: { initialMs: 10, maxMs: 20 },
      onOpen: () => undefined,
      onEvent: () => undefined,
      onDown: () => undefined,
    });
    stream.start();
    await until(() => gateway.openStreams === 1);
    stream.stop();
    await until(() => gateway.openStreams === 0);
    const seen = gateway.seen('/v1/events').length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(gateway.seen('/v1/events')).toHaveLength(seen);
  });
});
