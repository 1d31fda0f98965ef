// A pool of load-generator processes (loadgen.ts), each with its own block of source addresses.
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../../../services/node/config.ts';
import type { Command, Reply } from './loadgen.ts';

export class Generators {
  private constructor(private readonly children: ChildProcess[]) {}

  static async start(count: number): Promise<Generators> {
    const children = Array.from({ length: count }, () =>
      fork(join(ROOT, 'scripts/bench/load/loadgen.ts'), [], {
        execArgv: ['--import', 'tsx', '--max-old-space-size=4096'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    return new Generators(children);
  }

  /** The generators' own processes, to report what the load itself cost. */
  get pids(): number[] {
    return this.children.map((c) => c.pid as number);
  }

  get size(): number {
    return this.children.length;
  }

  /**
   * Source addresses for generator `g`: 127.<second>.<third>.<fourth>, where the second and
   * third octets spread clients over nginx's ip_hash buckets and the fourth keeps each address
   * under nginx's per-address limits.
   */
  addresses(g: number, perGenerator = 200): string[] {
    const out: string[] = [];
    for (let i = 0; i < perGenerator; i++) {
      const n = g * perGenerator + i;
      out.push(`127.${1 + (n % 200)}.${1 + Math.floor(n / 200)}.${1 + (i % 4)}`);
    }
    return out;
  }

  /** Sends one command to each generator (built per generator) and waits for every reply. */
  async each<R extends Reply>(build: (g: number) => Command, timeoutMs = 600_000): Promise<R[]> {
    return Promise.all(
      this.children.map(
        (child, g) =>
          new Promise<R>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error('load generator timed out')),
              timeoutMs,
            );
            child.once('message', (reply: Reply) => {
              clearTimeout(timer);
              if (reply.type === 'error') reject(new Error(`load generator: ${reply.message}`));
              else resolve(reply as R);
            });
            child.send(build(g));
          }),
      ),
    );
  }

  /** Closes every connection the generators hold; they stay up for the next `open`. */
  async closeAll(): Promise<void> {
    await this.each(() => ({ type: 'close' }), 60_000);
  }

  async stop(): Promise<void> {
    await this.each(() => ({ type: 'close' }), 30_000).catch(() => []);
    for (const child of this.children) child.kill();
  }
}
