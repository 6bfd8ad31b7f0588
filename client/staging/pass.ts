/**
 * The port between a hasher and the copier that keeps the file's copy (copier.ts), and the
 * hasher's side of it.
 *
 * When the copy is written alongside the hash (copier.ts, "Pace"), the hasher passes each buffer
 * it has hashed on to the copier instead of back to its reader, while the copier has room for it;
 * the copier writes it into the copy and returns it to the reader (hashing/reader.ts). The file is
 * read once for both and no byte is copied between threads: handing the copier a copy of each
 * buffer instead cost a third of the hashing throughput on its own (allocating and collecting a
 * fresh 4 MiB buffer per 4 MiB, bench item 1, 2026-12-02).
 */
import type { PassOn } from "../hashing/reader.ts";

/**
 * Hasher -> copier: where the hash starts, the offset of each checkpoint as taken (the hasher
 * stores it itself), the buffers it hashed (transferred; only alongside, while the copier has
 * room), then the end of the hash.
 */
export type CopierInbound =
  | { type: "start"; offset: number }
  | { type: "checkpoint"; offset: number }
  | { type: "bytes"; at: number; buffer: ArrayBuffer; length: number }
  | { type: "end" };

/** Copier -> hasher: room for more buffers. */
export type CopierOutbound = { type: "want"; buffers: number };

/**
 * Buffers the copier takes from the hasher at once (4 MiB each; the reader fills as many more,
 * so the hash never runs short). The hasher starts with this room before the copier has said
 * anything (the buffers wait in the copier's port while it opens the copy), and each buffer
 * returned gives it room for one more.
 */
export const COPIER_ROOM = 2;

/**
 * How long the hasher may wait for room, in all: WAIT_GRACE ms (the copier opening the copy) plus
 * WAIT_SHARE of the time it has hashed so far. Past that, a hashed buffer goes back to the reader
 * and the copier reads those bytes from the file itself: storage slower than the hash never holds
 * the hash back by more than this.
 */
const WAIT_SHARE = 0.05;
const WAIT_GRACE = 100;

/**
 * The hasher's side: passes each hashed buffer on to the copier while the copier has room for
 * it, waiting for room within the budget above. Resolves false when the buffer stays with the
 * hasher (to go back to the reader).
 */
export function passToCopier(copier: MessagePort, clock: () => number = () => performance.now()): PassOn {
  let room = COPIER_ROOM;
  let wake: (() => void) | undefined;
  copier.onmessage = (event: MessageEvent<CopierOutbound>) => {
    room += event.data.buffers;
    wake?.();
  };
  const started = clock();
  let waited = 0;
  return async (at, buffer, length) => {
    if (room === 0) {
      const t = clock();
      const budget = WAIT_GRACE + (t - started) * WAIT_SHARE - waited;
      if (budget > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, budget);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      waited += clock() - t;
      if (room === 0) return false;
    }
    room--;
    copier.postMessage({ type: "bytes", at, buffer, length } satisfies CopierInbound, [buffer]);
    return true;
  };
}
