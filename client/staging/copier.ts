/**
 * The copy of a file kept in this browser (opfs.ts), written by a worker of its own beside the
 * hasher; an earlier session's copy goes on from where it ends, and the copy is committed every
 * `step` bytes (the hasher's save step).
 *
 * Pace: only a whole copy can stand in for the file after a crash (staging.ts answers "partial"
 * for any other), so what a copy written during the hash buys is the seconds between the end of
 * the hash and the copy being whole. Its price depends on the cores:
 * - "alongside" (4 cores or more): the hasher passes each hashed buffer on (pass.ts), the copier
 *   writes it and returns it to the reader; the copy stays within a few buffers of the hash and
 *   is whole when the hash ends. Bytes it was not passed (the copy began behind the hash's resume
 *   point, or it had no room) it reads from the file itself, resting while the hash runs if far
 *   behind.
 * - "after-hash" (fewer cores): the copier opens the copy at once (so a browser without OPFS says
 *   so at once), then waits for the hash to end and copies at full pace, reading the file itself.
 *   On 2 cores the hash takes one and its reader much of the other; writing 512 MiB into the page
 *   cache took another 1.3 s of CPU on this VM, so a copy alongside cost the hash a third of its
 *   throughput, and one resting between writes a fifth (bench item 1, docs/bench.md).
 *
 * The hasher tells the copier the offset of each checkpoint it takes, which is how the copier
 * knows how far the hash is; the hasher stores its checkpoints itself and never waits on the
 * copy (hasher.worker.ts says why: stored here, they were lost with this worker). The copier goes on after the hash has ended until the copy is whole (worker-hasher.ts keeps it
 * running).
 *
 * A failure (storage full, OPFS refusing) stops the copy, never the hash or the upload: the copy
 * is removed.
 */
import { type CopySource, createCopySource } from "./copy-source.ts";
import { nameOf, openSink, removeCopy, type StageEvent, type StageSink } from "./opfs.ts";
import type { CopierInbound } from "./pass.ts";

/** How the copy keeps pace with the hash (above). */
export type CopyPace = "alongside" | "after-hash";

/** Logical cores from which the copy is written alongside the hash. */
const ALONGSIDE_CORES = 4;

/** The pace for this machine: alongside with cores to spare, after the hash otherwise. */
export function defaultCopyPace(): CopyPace {
  return (globalThis.navigator?.hardwareConcurrency ?? 1) >= ALONGSIDE_CORES ? "alongside" : "after-hash";
}

/**
 * Storage too slow to be a disk: an OPFS kept in memory, as in Chromium's private windows (and
 * Playwright's default contexts), which wrote at 13-30 MB/s against 420-860 MB/s into a profile on
 * disk (bench item 1, 2026-12). Such a copy dies with the window, so it could never serve after a
 * crash, and it holds the file in RAM. Once the hash has done (alongside), or would have done at
 * the pace it had (after the hash), LAG_FROM bytes in the time the copy has run, a copy that has
 * done less than LAG_RATIO of that stops as "slow". Measured against the hash, not the clock: on a
 * loaded machine both slow down together, while a timed probe of the first 16 MiB (64 MB/s)
 * stopped a disk profile's copy in the bench at load 11. An eighth, not more: on 2 quiet cores a
 * disk profile's copy ran at 0.59 of the hash (bench, 2026-12-02 14:22), an in-memory one at
 * 0.05-0.12. Only the in-place path is judged: the createWritable path (WebKitGTK) is slow on disk
 * as well (20-40 MB/s, each commit copies the file), and keeping that copy is the point there.
 */
const LAG_FROM = 64 * 1024 * 1024;
const LAG_RATIO = 1 / 8;

/**
 * Alongside, after bytes it read from the file itself while the hash runs more than CATCH_UP ahead,
 * the copier rests this many times as long as the read and write took: a copier reading the file
 * at full pace beside the hash took half its speed on 2 cores (bench item 1). Closer behind (the
 * buffers passed before the copier had opened the copy), it catches up at full pace.
 */
const REST_WHILE_HASHING = 2;
const CATCH_UP = 32 * 1024 * 1024;

class SlowStorage extends Error {
  override name = "SlowStorage";
}

export interface CopyJob {
  file: Blob;
  key: string;
  /** Commit the copy at least every this many bytes (the hasher's save step). */
  step: number;
  pace: CopyPace;
}

export interface CopierHooks {
  report(event: StageEvent): void;
  /** The copy is whole or stopped, and the hash has ended. */
  settled(): void;
  /** Opens the copy for writing (tests give their own); opfs.ts's openSink by default. */
  open?: (key: string) => Promise<StageSink | undefined>;
  /** The hasher's reader, to which the buffers the hasher passed on are returned once written. */
  reader?: MessagePort;
}

/**
 * Copies `job.file` into its copy, following the hash by what arrives on `hasher`. Resolves
 * when the copy is whole or stopped (settled() may come later, when the hash ends after the copy).
 */
export function runCopier(job: CopyJob, hasher: MessagePort, hooks: CopierHooks): Promise<void> {
  let copying = true;
  const source = createCopySource(job.file, hasher, job.pace === "alongside" ? hooks.reader : undefined);
  // This run of the hash, as far as its messages tell: where it started and is, and when.
  const hash = { from: 0, at: 0, startedAt: performance.now(), endedAt: undefined as number | undefined };
  const advance = () => {
    if (hash.endedAt !== undefined && !copying) hooks.settled();
  };
  hasher.onmessage = (event: MessageEvent<CopierInbound>) => {
    const msg = event.data;
    if (msg.type === "start") {
      hash.from = hash.at = msg.offset;
      hash.startedAt = performance.now();
    } else if (msg.type === "bytes") source.passed(msg);
    else if (msg.type === "checkpoint") hash.at = msg.offset;
    else {
      hash.endedAt = performance.now();
      source.hashEnded(); // a hash that ended without reading (its digest was stored) sends no bytes
    }
    advance();
  };
  const io: CopyIo = {
    open: hooks.open ?? openSink,
    source,
    hashedInRun: () => hash.at - hash.from,
    hashAt: () => Math.max(hash.at, source.hashedTo()),
    hashing: () => hash.endedAt === undefined,
    hashRate: () => (hash.endedAt === undefined || hash.endedAt <= hash.startedAt ? 0 : (hash.at - hash.from) / (hash.endedAt - hash.startedAt)),
  };
  return copyFile(job, io, hooks.report).then(() => {
    copying = false;
    source.close();
    advance();
  });
}

interface CopyIo {
  open: (key: string) => Promise<StageSink | undefined>;
  source: CopySource;
  /** Bytes this run of the hash has done (by its checkpoints). */
  hashedInRun(): number;
  /** Where the hash is (checkpoints and passed buffers). */
  hashAt(): number;
  hashing(): boolean;
  /** Bytes per ms the hash ran at, once it has ended (0 when it read nothing). */
  hashRate(): number;
}

/** The copy loop: from where the copy ends to the file's end, committing every `step` bytes. */
async function copyFile(job: CopyJob, io: CopyIo, report: (event: StageEvent) => void): Promise<void> {
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
    if (job.pace === "after-hash") await io.source.untilHashEnded();
    let at = sink.size;
    let committed = at;
    const from = at;
    const now = () => performance.now();
    // What the hash did, or would have done at its pace, in the time this copy has run: measured from here.
    const hashedBefore = io.hashedInRun();
    const copyStart = now();
    const hashedSince = () => (job.pace === "alongside" ? io.hashedInRun() - hashedBefore : (now() - copyStart) * io.hashRate());
    const spent = { read: 0, write: 0, commit: 0, readAgain: 0 };
    while (at < file.size) {
      const t = now();
      const { bytes, passed, release } = await io.source.next(at);
      spent.read += now() - t;
      if (bytes.length === 0) throw new Error(`the file ended at ${at} of ${file.size} bytes`);
      const t0 = now();
      const length = bytes.length; // a passed buffer is transferred back to the reader once written
      if (!passed) spent.readAgain += length;
      try {
        await sink.write(bytes, at);
      } finally {
        release();
      }
      spent.write += now() - t0;
      at += length;
      const hashed = hashedSince();
      if (sink.inPlace && hashed >= LAG_FROM && at - from < hashed * LAG_RATIO) throw new SlowStorage();
      if (Math.floor(at / step) > Math.floor(committed / step) || at === file.size) {
        const t1 = now();
        await sink.commit();
        spent.commit += now() - t1;
        committed = at;
        if (at < file.size) report({ kind: "written", offset: at });
      }
      if (!passed && io.hashing() && io.hashAt() - at > CATCH_UP) await new Promise((resolve) => setTimeout(resolve, (now() - t) * REST_WHILE_HASHING));
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
