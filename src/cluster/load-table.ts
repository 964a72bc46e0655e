/**
 * The workers' shared load table (`accept_mutex off`): a small file the primary makes and every
 * worker maps (native/sluice_accept.c, acceptShare), one 32-byte slot per worker index with the
 * worker's open connections and whether it accepts on a shared socket. A worker's addon accepts
 * from the shared socket only while it holds no more than the least loaded worker plus a slack,
 * so a burst of long-lived connections spreads over the workers instead of landing on the one
 * whose thread woke first.
 *
 * The file is unlinked as soon as it is made: the primary keeps its descriptor and passes it to
 * each worker as an inherited descriptor (CHILD_FD in the worker), so nothing is left behind
 * whatever way the processes end. The primary clears a worker's slot when it exits, so that a
 * dead worker is no one's measure and its successor in the slot starts from nothing.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Slots in the table (SHARE_SLOTS in sluice_accept.c); a worker index beyond has none (not balanced). */
export const LOAD_TABLE_SLOTS = 64;
/** Bytes per slot (share_slot_t in sluice_accept.c). */
const SLOT_BYTES = 32;
/** The descriptor the table has in a worker: its place in the worker's stdio (workerStdio). */
export const LOAD_TABLE_CHILD_FD = 4;
/** `FD:SLOT`, the worker's table descriptor and slot (read by server/native-accept.ts). */
export const ACCEPT_SHARE_ENV = 'SLUICE_ACCEPT_SHARE';

export class LoadTable {
  #closed = false;

  private constructor(readonly fd: number) {}

  /** Makes the table (in /dev/shm where there is one); throws where no file can be made there. */
  static open(dir: string = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()): LoadTable {
    const path = join(dir, `sluice-load-${process.pid}-${randomBytes(6).toString('hex')}`);
    let fd = -1;
    try {
      fd = openSync(path, 'wx+', 0o600);
      unlinkSync(path);
      ftruncateSync(fd, LOAD_TABLE_SLOTS * SLOT_BYTES);
      return new LoadTable(fd);
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      throw e;
    }
  }

  /** The workers' stdio: the primary's own, the IPC channel, and the table at LOAD_TABLE_CHILD_FD. */
  workerStdio(): (number | 'ipc')[] {
    const stdio: (number | 'ipc')[] = [0, 1, 2, 'ipc'];
    stdio[LOAD_TABLE_CHILD_FD] = this.fd;
    return stdio;
  }

  /** What a worker with index `slot` is told (ACCEPT_SHARE_ENV), or null: no slot for it. */
  envFor(slot: number): string | null {
    return slot >= 0 && slot < LOAD_TABLE_SLOTS ? `${LOAD_TABLE_CHILD_FD}:${slot}` : null;
  }

  /** A worker in `slot` exited: its load and its place among the accepting ones go. */
  clear(slot: number): void {
    if (this.#closed || slot < 0 || slot >= LOAD_TABLE_SLOTS) return;
    writeSync(this.fd, Buffer.alloc(SLOT_BYTES), 0, SLOT_BYTES, slot * SLOT_BYTES);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.fd);
  }
}
