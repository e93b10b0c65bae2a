import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildCommand, ChildReply, ChildRole } from './protocol';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** One benchmark child process (upstream or gateway), driven over IPC one command at a time. */
export class BenchProcess {
  private readonly waiting: ((reply: ChildReply) => void)[] = [];
  private exited = false;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: ChildReply) => this.waiting.shift()?.(reply));
    child.on('exit', (code) => {
      this.exited = true;
      for (const waiter of this.waiting.splice(0)) {
        waiter({ kind: 'failed', message: `benchmark process exited with code ${code}` });
      }
    });
  }

  /** Forks a child on the running Node (the project's pinned one under npm) and starts `role` in it. */
  static async start(role: ChildRole): Promise<{ process: BenchProcess; url: string; adminToken?: string }> {
    const execArgv = ['--import', 'tsx'];
    const child = fork(CHILD, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const started = new BenchProcess(child);
    const reply = await started.call({ kind: 'start', role });
    if (reply.kind !== 'started') {
      await started.stop();
      throw new Error(`benchmark ${role.kind} did not start: ${reply.kind === 'failed' ? reply.message : reply.kind}`);
    }
    return { process: started, url: reply.url, ...(reply.adminToken ? { adminToken: reply.adminToken } : {}) };
  }

  /** Sends one command and waits for its reply. */
  call(command: ChildCommand): Promise<ChildReply> {
    if (this.exited) return Promise.resolve({ kind: 'failed', message: 'benchmark process has exited' });
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.send(command);
    });
  }

  /** The child's CPU time so far (main thread and whole process), in microseconds. */
  async cpu(): Promise<{ mainThreadMicros: number; processMicros: number }> {
    const reply = await this.call({ kind: 'cpu' });
    if (reply.kind !== 'cpu') throw new Error(`cannot read the CPU time: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Stops what the child runs, then the child itself (by its own pid). */
  async stop(): Promise<void> {
    if (this.exited) return;
    await Promise.race([this.call({ kind: 'stop' }), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (!this.exited) {
      this.child.disconnect();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }
}
