/** The harness's side of a load driver process: start it, send it commands, await the answers. */
import { fileURLToPath } from 'node:url';
import type { DriverCommand, DriverReply, OpenResult, WindowStats } from './driver-protocol.js';
import { startChild } from './processes.js';
import type { Child } from './processes.js';

const DRIVER_JS = fileURLToPath(new URL('./driver.js', import.meta.url));

export class Driver {
  readonly child: Child;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(name: string) {
    this.child = startChild(name, process.execPath, [DRIVER_JS], { ipc: true });
    this.child.proc.on('message', (r: DriverReply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      clearTimeout(p.timer);
      if (r.ok) p.resolve(r.result);
      else p.reject(new Error(`${this.child.name}: ${r.error}`));
    });
    this.child.proc.on('exit', (code, signal) => {
      for (const [id, p] of this.#pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`${this.child.name} exited (code ${code}, signal ${signal}) while answering request ${id}\n${this.child.tail()}`));
      }
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  request<T>(command: DriverCommand, timeoutMs: number): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.child.exited) {
        reject(new Error(`${this.child.name} is not running\n${this.child.tail()}`));
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.child.name}: no answer to "${command.cmd}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.proc.send({ id, command });
    });
  }

  open(c: Omit<Extract<DriverCommand, { cmd: 'open' }>, 'cmd'>): Promise<OpenResult> {
    return this.request<OpenResult>({ cmd: 'open', ...c }, c.timeoutMs * Math.max(1, Math.ceil(c.count / c.concurrency)) + 10_000);
  }

  mark(): Promise<void> {
    return this.request<void>({ cmd: 'mark' }, 5000);
  }

  stop(drainMs: number): Promise<WindowStats> {
    return this.request<WindowStats>({ cmd: 'stop', drainMs }, drainMs * 2 + 10_000);
  }

  closeAll(timeoutMs = 5000): Promise<number> {
    return this.request<number>({ cmd: 'closeAll', timeoutMs }, timeoutMs + 5000);
  }

  stopProcess(): Promise<void> {
    return this.child.stop(500);
  }
}
