/**
 * The copy of a file kept in this browser (opfs.ts), written by a worker of its own beside the
 * hasher, so that copying never slows hashing: the copier reads the file itself, at its own pace,
 * from where the copy ends (an earlier session's copy goes on), and commits the copy every `step`
 * bytes (the hasher's save step).
 *
 * While a file is copied, the hasher's checkpoints come here (over a MessagePort, as they are
 * taken): they tell the copier how far the hash is (to rest while it runs, and to judge slow
 * storage), and the copier stores each at once, in order. A checkpoint is not held back until
 * the copy reaches it: only a whole copy can stand in for the file (staging.ts answers "partial"
 * for any other), so a checkpoint ahead of the copy risks nothing, while holding it back lost the
 * hash's progress after a crash whenever the copy trailed (WebKitGTK's createWritable copy under
 * load: a crash mid-hash hashed again from 0). The copier goes on after the hash has ended until
 * the copy is whole (worker-hasher.ts keeps it running).
 *
 * A failure (storage full, OPFS refusing) stops the copy, never the hash or the upload: the copy
 * is removed.
 */
import type { CheckpointStore, HashCheckpoint } from "../hashing/checkpoint.ts";
import { nameOf, openSink, removeCopy, type StageEvent, type StageSink } from "./opfs.ts";

/** Bytes read from the file per write into the copy. */
const COPY_BUFFER = 4 * 1024 * 1024;

/**
 * Storage too slow to be a disk: an OPFS kept in memory, as in Chromium's private windows (and
 * Playwright's default contexts), which wrote at 13-30 MB/s against 420-860 MB/s into a profile on
 * disk (bench item 1, 2026-12). Such a copy dies with the window, so it could never serve after a
 * crash, and it holds the file in RAM: once the hash has done LAG_FROM bytes since the copy began,
 * a copy that has done less than LAG_RATIO of that stops as "slow". Measured against the hash, not the
 * clock: on a loaded machine both slow down together, while a timed probe of the first 16 MiB
 * (64 MB/s) stopped a disk profile's copy in the bench at load 11. An eighth, not more: on 2 quiet
 * cores a disk profile's copy ran at 0.59 of the hash (bench, 2026-12-02 14:22), an in-memory one
 * at 0.05-0.12. Only the in-place path is
 * judged: the createWritable path (WebKitGTK) is slow on disk as well (20-40 MB/s, each commit
 * copies the file), and keeping that copy is the point there.
 */
const LAG_FROM = 64 * 1024 * 1024;

/**
 * While the hash runs, the copier rests this many times as long as each write (and commit) took:
 * on 2 cores a copy at full pace took half the hasher's speed (bench item 1); resting, it leaves
 * the hasher most of the CPU and finishes after it, at full pace, once the hash has ended.
 */
const REST_WHILE_HASHING = 2;
const LAG_RATIO = 1 / 8;

class SlowStorage extends Error {
  override name = "SlowStorage";
}

/** The hasher's side of the port to the copier: where it starts, its checkpoints as taken, then the end of the hash. */
export type CopierInbound = { type: "start"; offset: number } | { type: "checkpoint"; checkpoint: HashCheckpoint } | { type: "end" };

/**
 * Between the hasher's reader and the copier: the reader sends a copy of each buffer it read
 * (while the copier grants it room: `want` adds buffers), so the file is read once for both; it
 * sends `end` when its reading ended.
 */
export type SharedBytes = { type: "bytes"; at: number; buffer: ArrayBuffer } | { type: "end" };
export type SharedBytesAsk = { type: "want"; buffers: number };

/** Buffers the reader may have sent ahead of the copier (4 MiB each). */
const SHARED_AHEAD = 4;

export interface CopyJob {
  file: Blob;
  key: string;
  /** Commit the copy at least every this many bytes (the hasher's save step). */
  step: number;
}

export interface CopierHooks {
  /** Where the hasher's checkpoints are stored, as they come (IndexedDB in the browser). */
  checkpoints: CheckpointStore;
  report(event: StageEvent): void;
  /** The copy is whole or stopped, the hash has ended, and every checkpoint due is stored. */
  settled(): void;
  /** Opens the copy for writing (tests give their own); opfs.ts's openSink by default. */
  open?: (key: string) => Promise<StageSink | undefined>;
  /** The hasher's reader (SharedBytes): bytes it read are taken from it instead of being read again. */
  reader?: MessagePort;
}

/**
 * Copies `job.file` into its copy and stores the checkpoints that arrive on `hasher`. Resolves
 * when the copy is whole or stopped (settled() may come later, when the hash ends after the copy).
 */
export function runCopier(job: CopyJob, hasher: MessagePort, hooks: CopierHooks): Promise<void> {
  let copying = true;
  let hashEnded = false;
  let storing: Promise<void> = Promise.resolve(); // one store at a time, in the order taken
  const advance = () => {
    if (hashEnded && !copying) void storing.then(() => hooks.settled());
  };
  const source = bytesOf(job.file, hooks.reader);
  const hash = { from: 0, at: 0 }; // this run of the hash, as far as its checkpoints tell
  hasher.onmessage = (event: MessageEvent<CopierInbound>) => {
    const msg = event.data;
    if (msg.type === "start") hash.from = hash.at = msg.offset;
    else if (msg.type === "checkpoint") {
      const { checkpoint } = msg;
      storing = storing.then(() => hooks.checkpoints.set(job.key, checkpoint)).catch(() => undefined);
      hash.at = checkpoint.offset;
    } else {
      hashEnded = true;
      source.readerEnded(); // a hash that ended without reading (its digest was stored) sends no bytes
    }
    advance();
  };
  const io = { open: hooks.open ?? openSink, next: source.next, hashedInRun: () => hash.at - hash.from, hashing: () => !hashEnded };
  return copyFile(job, io, hooks.report).then(() => {
    copying = false;
    advance();
  });
}

/** The copy loop: from where the copy ends to the file's end, committing every `step` bytes. */
async function copyFile(
  job: CopyJob,
  io: { open: (key: string) => Promise<StageSink | undefined>; next: (at: number) => Promise<Uint8Array>; hashedInRun: () => number; hashing: () => boolean },
  report: (event: StageEvent) => void,
): Promise<void> {
  const { file, key, step } = job;
  let sink: StageSink | undefined;
  try {
    sink = await io.open(key);
    if (sink && sink.size > file.size) {
      // Longer than the file: not a copy of it. Started again.
      await sink.close();
      await removeCopy(key);
      sink = await io.open(key);
    }
    if (!sink) {
      report({ kind: "stopped", why: "unavailable" });
      return;
    }
    let at = sink.size;
    let committed = at;
    const from = at;
    // Measured from here: a copier still starting (its worker loads on demand) while the hash runs is not slow storage.
    const hashedBefore = io.hashedInRun();
    const now = () => performance.now();
    const spent = { read: 0, write: 0, commit: 0 };
    while (at < file.size) {
      const t = now();
      const bytes = await io.next(at);
      spent.read += now() - t;
      if (bytes.length === 0) throw new Error(`the file ended at ${at} of ${file.size} bytes`);
      const t0 = now();
      await sink.write(bytes, at);
      spent.write += now() - t0;
      at += bytes.length;
      const hashed = io.hashedInRun() - hashedBefore;
      if (sink.inPlace && hashed >= LAG_FROM && at - from < hashed * LAG_RATIO) throw new SlowStorage();
      if (Math.floor(at / step) > Math.floor(committed / step) || at === file.size) {
        const t1 = now();
        await sink.commit();
        spent.commit += now() - t1;
        committed = at;
        if (at < file.size) report({ kind: "written", offset: at });
      }
      if (io.hashing()) await new Promise((resolve) => setTimeout(resolve, (now() - t0) * REST_WHILE_HASHING));
    }
    await sink.close();
    report({ kind: "whole", spent });
  } catch (error) {
    await sink?.close().catch(() => undefined);
    await removeCopy(key);
    const name = nameOf(error);
    report({ kind: "stopped", why: name === "QuotaExceededError" ? "full" : name === "SlowStorage" ? "slow" : "unavailable" });
  }
}

/**
 * The file's bytes at any offset: from the reader's buffers when it sent the ones there, else read
 * here (up to the next buffer the reader sent, 4 MiB at most). While the reader may still send,
 * the copier waits for it rather than read the same bytes a second time.
 */
function bytesOf(file: Blob, reader: MessagePort | undefined): { next(at: number): Promise<Uint8Array>; readerEnded(): void } {
  const inbox: { at: number; bytes: Uint8Array }[] = [];
  let ended = !reader;
  let wake: (() => void) | undefined;
  const markEnded = () => {
    ended = true;
    wake?.();
  };
  if (reader) {
    reader.onmessage = (event: MessageEvent<SharedBytes>) => {
      const msg = event.data;
      if (msg.type === "bytes") inbox.push({ at: msg.at, bytes: new Uint8Array(msg.buffer) });
      else ended = true;
      wake?.();
    };
    reader.postMessage({ type: "want", buffers: SHARED_AHEAD } satisfies SharedBytesAsk);
  }
  const taken = () => {
    inbox.shift();
    reader?.postMessage({ type: "want", buffers: 1 } satisfies SharedBytesAsk);
  };
  return {
    readerEnded: markEnded,
    async next(at) {
      for (;;) {
        while (inbox[0] && inbox[0].at + inbox[0].bytes.length <= at) taken(); // behind the copy: not needed
        const head = inbox[0];
        if (head && head.at <= at) {
          taken();
          return head.bytes.subarray(at - head.at);
        }
        if (!head && !ended) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        const end = Math.min(file.size, at + COPY_BUFFER, head ? head.at : file.size);
        return new Uint8Array(await file.slice(at, end).arrayBuffer());
      }
    },
  };
}
