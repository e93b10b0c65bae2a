import { connect, createServer, type Server, type Socket } from 'node:net';

/** A running round-robin TCP balancer. */
export interface RunningBalancer {
  /** The port it listens on. */
  readonly port: number;
  /** Replaces the instances connections are spread over (`host:port` on loopback). */
  setBackends(ports: readonly number[]): void;
  close(): Promise<void>;
}

/**
 * A minimal layer-4 load balancer for the development stack: each client connection goes to
 * the next instance in turn, as a TCP balancer in front of several gateways would send it.
 *
 * Development only (`npm run stack -- --instances 2`); production puts its own balancer or
 * reverse proxy in front (docs/protocol.md, "Several instances").
 */
export async function startBalancer(port: number, host = '127.0.0.1'): Promise<RunningBalancer> {
  let backends: readonly number[] = [];
  let next = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    if (backends.length === 0) {
      client.destroy();
      return;
    }
    const backendPort = backends[next++ % backends.length]!;
    const backend = connect(backendPort, host);
    sockets.add(backend);
    backend.once('close', () => sockets.delete(backend));
    client.pipe(backend).pipe(client);
    const drop = () => {
      client.destroy();
      backend.destroy();
    };
    client.once('error', drop);
    backend.once('error', drop);
    client.once('close', drop);
    backend.once('close', drop);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as { port: number }).port,
    setBackends(ports) {
      backends = [...ports];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
