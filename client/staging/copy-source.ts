/**
 * Where the copier (copier.ts) gets the file's bytes: the buffers the hasher passed on (pass.ts)
 * when it passed the ones at the copy's end, else read from the file here.
 */
import { filler, type ReaderRequest } from "../hashing/reader.ts";
import type { CopierOutbound } from "./pass.ts";

/** Bytes read from the file per write into the copy. */
const COPY_BUFFER = 4 * 1024 * 1024;

export interface CopySource {
  /** A buffer the hasher passed on. */
  passed(msg: { at: number; buffer: ArrayBuffer; length: number }): void;
  /** The hash has ended: no more buffers will come. */
  hashEnded(): void;
  untilHashEnded(): Promise<void>;
  /** How far the hash is, as far as the passed buffers tell. */
  hashedTo(): number;
  /** The file's bytes from `at`; `release` once written (a passed buffer then goes back to the reader). */
  next(at: number): Promise<{ bytes: Uint8Array; passed: boolean; release(): void }>;
  /** The copy ended (whole or stopped): buffers held or still coming go straight back to the reader. */
  close(): void;
}

/**
 * While the hash runs and the copier may still be passed the bytes at `at`, it waits for them
 * rather than read them a second time. Every passed buffer goes back to the reader exactly once
 * (the reader fills only as many buffers as it has back), and each one returned while the hash
 * runs gives the hasher room for the next. Bytes read here go into one buffer kept for them, from
 * one stream while the reads follow on: a new 4 MiB buffer per read is fresh memory each time,
 * which this VM's hypervisor makes dear (docs/bench.md, issue 18).
 *
 * `reader`: where passed buffers go back; without one the hasher passes none (reads only).
 */
export function createCopySource(file: Blob, hasher: MessagePort, reader: MessagePort | undefined): CopySource {
  const inbox: { at: number; buffer: ArrayBuffer; length: number }[] = [];
  let ended = false; // the hash
  let open = true;
  let hashedTo = 0;
  let wake: (() => void) | undefined;
  const endWaiters: (() => void)[] = [];
  const own: { buffer?: ArrayBuffer; at: number; fill?: ReturnType<typeof filler> } = { at: -1 };
  const giveBack = (buffer: ArrayBuffer) => {
    reader?.postMessage({ type: "free", buffer } satisfies ReaderRequest, [buffer]);
    if (open && !ended) hasher.postMessage({ type: "want", buffers: 1 } satisfies CopierOutbound);
  };
  const readOwn = async (at: number, end: number) => {
    if (own.at !== at || !own.fill) own.fill = filler(file.slice(at).stream());
    const { buffer, length } = await own.fill(own.buffer ?? new ArrayBuffer(COPY_BUFFER), end - at);
    own.buffer = undefined; // lent out until released
    own.at = at + length;
    return { bytes: new Uint8Array(buffer, 0, length), passed: false, release: () => void (own.buffer = buffer) };
  };
  return {
    passed(msg) {
      hashedTo = Math.max(hashedTo, msg.at + msg.length);
      if (!open) return giveBack(msg.buffer);
      inbox.push(msg);
      wake?.();
    },
    hashEnded() {
      ended = true;
      wake?.();
      for (const resolve of endWaiters.splice(0)) resolve();
    },
    untilHashEnded: () => (ended ? Promise.resolve() : new Promise<void>((resolve) => endWaiters.push(resolve))),
    hashedTo: () => hashedTo,
    close() {
      open = false;
      for (const held of inbox.splice(0)) giveBack(held.buffer);
    },
    async next(at) {
      for (;;) {
        while (inbox[0] && inbox[0].at + inbox[0].length <= at) giveBack(inbox.shift()!.buffer); // behind the copy: not needed
        const head = inbox[0];
        if (head && head.at <= at) {
          inbox.shift();
          const skip = at - head.at;
          return { bytes: new Uint8Array(head.buffer, skip, head.length - skip), passed: true, release: () => giveBack(head.buffer) };
        }
        if (!head && reader && !ended) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        return readOwn(at, Math.min(file.size, at + COPY_BUFFER, head ? head.at : file.size));
      }
    },
  };
}
