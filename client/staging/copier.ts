/**
 * The copy of a file kept in this browser (opfs.ts), written by a worker of its own beside the
 * hasher, so that copying never slows hashing: the copier reads the file itself, at its own pace,
 * from where the copy ends (an earlier session's copy goes on), and commits the copy every `step`
 * bytes (the hasher's save step).
 *
 * The rule that the copy is never behind the hash is kept on the other side: while a file is
 * copied, the hasher's checkpoints come here (over a MessagePort, as they are taken) instead of
 * going to IndexedDB, and a checkpoint at X is stored only once the copy durably holds X bytes.
 * The hasher never waits; a checkpoint the copy has not reached yet waits here, and the copier
 * goes on after the hash has ended until the copy is whole (worker-hasher.ts keeps it running).
 *
 * A failure (storage full, OPFS refusing) stops the copy, never the hash or the upload: the copy
 * is removed, and from then on checkpoints are stored as they come, as without staging.
 */
import type { CheckpointStore, HashCheckpoint } from "../hashing/checkpoint.ts";
import { filler } from "../hashing/reader.ts";
import { nameOf, openSink, removeCopy, type StageEvent, type StageSink } from "./opfs.ts";

/** Bytes read from the file per write into the copy. */
const COPY_BUFFER = 4 * 1024 * 1024;

/**
 * The storage probe: the writes of the first this many bytes written in place (sync access
 * handle) are timed, flushes not (an fsync on a busy disk can take a while; a write lands in the
 * page cache), and below MIN_WRITE_RATE the copy stops as "slow". What it catches is an OPFS kept in memory:
 * Chromium's private windows (and Playwright's default contexts) wrote at 13-30 MB/s there,
 * against 420-860 MB/s into a profile on disk (bench item 1, 2026-12). Such a copy dies with
 * the window, so it could never serve after a crash, and it would hold the file in RAM. Only the
 * in-place path is probed: the createWritable path (WebKitGTK) is slow on disk as well (20-40
 * MB/s, each commit copies the file), and keeping that copy is the point there.
 */
const PROBE_BYTES = 16 * 1024 * 1024;
const MIN_WRITE_RATE = 64 * 1000 * 1000; // bytes per second

class SlowStorage extends Error {
  override name = "SlowStorage";
}

/** The hasher's side of the port to the copier: its checkpoints as taken, then the end of the hash. */
export type CopierInbound = { type: "checkpoint"; checkpoint: HashCheckpoint } | { type: "end" };

export interface CopyJob {
  file: Blob;
  key: string;
  /** Commit the copy at least every this many bytes (the hasher's save step). */
  step: number;
}

export interface CopierHooks {
  /** Where checkpoints are stored once the copy has reached them (IndexedDB in the browser). */
  checkpoints: CheckpointStore;
  report(event: StageEvent): void;
  /** The copy is whole or stopped, the hash has ended, and every checkpoint due is stored. */
  settled(): void;
  /** Opens the copy for writing (tests give their own); opfs.ts's openSink by default. */
  open?: (key: string) => Promise<StageSink | undefined>;
  /** Milliseconds, for the storage probe (tests give their own clock); performance.now by default. */
  now?: () => number;
}

/**
 * Copies `job.file` into its copy and stores the checkpoints that arrive on `hasher` once the copy
 * holds their offset. Resolves when the copy is whole or stopped (settled() may come later, when
 * the hash ends after the copy).
 */
export function runCopier(job: CopyJob, hasher: MessagePort, hooks: CopierHooks): Promise<void> {
  /** Bytes the copy durably holds; Infinity once copying stopped (no copy: nothing to wait for). */
  let committed = 0;
  let copying = true;
  let hashEnded = false;
  const waiting: HashCheckpoint[] = []; // offsets increasing
  let storing: Promise<void> = Promise.resolve();
  const advance = () => {
    let due: HashCheckpoint | undefined;
    while (waiting.length > 0 && waiting[0]!.offset <= committed) due = waiting.shift();
    if (due) {
      const checkpoint = due;
      storing = storing.then(() => hooks.checkpoints.set(job.key, checkpoint)).catch(() => undefined);
    }
    if (hashEnded && !copying) void storing.then(() => hooks.settled());
  };
  hasher.onmessage = (event: MessageEvent<CopierInbound>) => {
    const msg = event.data;
    if (msg.type === "checkpoint") waiting.push(msg.checkpoint);
    else hashEnded = true;
    advance();
  };
  const onCommit = (offset: number) => {
    committed = offset;
    advance();
  };
  const clock = hooks.now ?? (() => performance.now());
  return copyFile(job, { open: hooks.open ?? openSink, now: clock }, hooks.report, onCommit).then(() => {
    copying = false;
    advance();
  });
}

/** The copy loop; `onCommit(offset)` after each commit (Infinity once stopped: no copy holds the hash back). */
async function copyFile(
  job: CopyJob,
  io: { open: (key: string) => Promise<StageSink | undefined>; now: () => number },
  report: (event: StageEvent) => void,
  onCommit: (offset: number) => void,
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
      return onCommit(Number.POSITIVE_INFINITY);
    }
    let at = sink.size;
    let committed = at;
    onCommit(committed);
    const fill = filler(file.slice(at).stream());
    let buffer = new ArrayBuffer(Math.min(COPY_BUFFER, Math.max(1, file.size - at)));
    const probe = { bytes: 0, ms: 0 };
    const spent = { read: 0, write: 0, commit: 0 };
    while (at < file.size) {
      const t = io.now();
      const filled = await fill(buffer);
      spent.read += io.now() - t;
      buffer = filled.buffer;
      if (filled.length === 0) throw new Error(`the file ended at ${at} of ${file.size} bytes`);
      const t0 = io.now();
      await sink.write(new Uint8Array(buffer, 0, filled.length), at);
      spent.write += io.now() - t0;
      if (sink.inPlace && probe.bytes < PROBE_BYTES) {
        probe.bytes += filled.length;
        probe.ms += io.now() - t0;
        if (probe.bytes >= PROBE_BYTES && (probe.bytes * 1000) / Math.max(probe.ms, 1e-3) < MIN_WRITE_RATE) throw new SlowStorage();
      }
      at += filled.length;
      if (Math.floor(at / step) > Math.floor(committed / step) || at === file.size) {
        const t1 = io.now();
        await sink.commit();
        spent.commit += io.now() - t1;
        committed = at;
        if (at < file.size) report({ kind: "written", offset: at });
        onCommit(at);
      }
    }
    await sink.close();
    report({ kind: "whole", spent });
  } catch (error) {
    await sink?.close().catch(() => undefined);
    await removeCopy(key);
    const name = nameOf(error);
    report({ kind: "stopped", why: name === "QuotaExceededError" ? "full" : name === "SlowStorage" ? "slow" : "unavailable" });
    onCommit(Number.POSITIVE_INFINITY);
  }
}
