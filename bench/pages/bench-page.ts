/**
 * The bench's page (served by the vite dev stack at /bench/pages/bench.html), driven by
 * bench/scenarios/browser.ts as `window.bench`. The file comes from the file input (set by path
 * over CDP), so it is a disk-backed File as a person's would be.
 */
import { createSHA256 } from "hash-wasm";
import { createUploader } from "../../client/index.ts";
import { createWorkerHasher } from "../../client/hashing/worker-hasher.ts";
import { createOpfsStaging } from "../../client/staging/staging.ts";
import { type CopyPace, defaultCopyPace } from "../../client/staging/copier.ts";
import { type CopyTimes, type StageEvent, stageDirectory } from "../../client/staging/opfs.ts";

const MiB = 1024 * 1024;

// Long tasks on this page's main thread, from page load on.
const longTasks: number[] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });

function file(): File {
  const input = document.querySelector<HTMLInputElement>("[data-testid=bench-file]");
  const f = input?.files?.[0];
  if (!f) throw new Error("no file set on the bench input");
  return f;
}

/**
 * Main-thread responsiveness probe: a 10 ms timer; how late it fires bounds the longest stretch
 * the main thread was busy (long tasks only report >= 50 ms, this sees shorter ones too).
 */
function lagProbe(): () => number {
  let max = 0;
  let expected = performance.now() + 10;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    const now = performance.now();
    max = Math.max(max, now - expected);
    expected = now + 10;
    setTimeout(tick, 10);
  };
  setTimeout(tick, 10);
  return () => {
    stopped = true;
    return max;
  };
}

// Created at page load, as an app creates its uploader: the hasher starts its workers ahead, so
// (as for a person dropping a file on a loaded page) their script loading is not in the timing.
const hasher = createWorkerHasher({ stage: true });
const staging = createOpfsStaging();

/** The running upload's last snapshot, for the harness to log while it waits. */
let lastSnapshot: unknown;

const bench = {
  /** What the running `upload()` last reported (state, hash and transfer progress, notice). */
  async progress(): Promise<unknown> {
    return lastSnapshot;
  },

  /**
   * The uploader's hasher (its Web Workers: reader, hash-wasm, IndexedDB checkpoints); with
   * `stage`, also keeping the copy in OPFS (issue 18), whose size is measured before it is removed.
   */
  async hashUploader(
    key: string,
    stage = false,
    copyPace?: CopyPace,
  ): Promise<{ ms: number; digest: string; startMs: number; stagedBytes: number; stageEnd: string; copyMs: number; spent?: CopyTimes }> {
    await hasher.forget(key);
    await staging.remove(key);
    const t0 = performance.now();
    let startMs = 0;
    let last: StageEvent | undefined;
    // The copier may finish after the hash (it runs beside it): the copy's end is timed apart.
    let copied: () => void = () => undefined;
    const copyEnded = new Promise<void>((resolve) => (copied = resolve));
    let copyMs = 0;
    const onStage = (e: StageEvent) => {
      last = e;
      if (e.kind !== "written") {
        copyMs = performance.now() - t0;
        copied();
      }
    };
    const result = await hasher.start({
      key,
      file: file(),
      stage,
      ...(copyPace ? { copyPace } : {}),
      onStage,
      onStart: () => (startMs = performance.now() - t0),
    }).result;
    const ms = performance.now() - t0;
    if (stage) await copyEnded;
    await hasher.forget(key);
    if (result.kind !== "done") throw new Error("hash did not finish");
    const dir = await stageDirectory(false);
    const stagedBytes = dir
      ? await dir
          .getFileHandle(key)
          .then((h) => h.getFile())
          .then(
            (f) => f.size,
            () => 0,
          )
      : 0;
    await staging.remove(key);
    return {
      ms,
      digest: result.digest,
      startMs,
      stagedBytes,
      stageEnd: last ? (last.kind === "stopped" ? `stopped (${last.why})` : last.kind) : "none",
      copyMs,
      ...(last?.kind === "whole" && last.spent ? { spent: last.spent } : {}),
    };
  },

  /** The pace the copy keeps by default on this machine (by its cores), and the cores. */
  async copyPace(): Promise<{ pace: CopyPace; cores: number }> {
    return { pace: defaultCopyPace(), cores: navigator.hardwareConcurrency };
  },

  /** Raw hash-wasm on the same bytes, already in memory: the ceiling for the uploader's hasher. */
  async hashRaw(): Promise<{ ms: number; digest: string }> {
    const bytes = new Uint8Array(await file().arrayBuffer());
    const t0 = performance.now();
    const h = await createSHA256();
    for (let i = 0; i < bytes.length; i += 4 * MiB) h.update(bytes.subarray(i, i + 4 * MiB));
    const digest = `sha256:${h.digest("hex")}`;
    return { ms: performance.now() - t0, digest };
  },

  /** hash-wasm on the main thread reading the File in the hasher's 4 MiB slices: no worker, no IndexedDB. */
  async hashSlices(): Promise<{ ms: number; digest: string }> {
    const f = file();
    const t0 = performance.now();
    const h = await createSHA256();
    for (let i = 0; i < f.size; i += 4 * MiB) h.update(new Uint8Array(await f.slice(i, i + 4 * MiB).arrayBuffer()));
    const digest = `sha256:${h.digest("hex")}`;
    return { ms: performance.now() - t0, digest };
  },

  /** Hash + upload with the library's defaults; long tasks and timer lag on the main thread. */
  async upload(): Promise<{ ms: number; digest: string; longTasks: number[]; maxLag: number; hashMs: number; calibrated: boolean }> {
    // Prove the observer works here: an 80 ms busy task must show up as a long task.
    longTasks.length = 0;
    // (In a timer task of the page's own: code run by the DevTools evaluate call is not a task.)
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        const busyUntil = performance.now() + 80;
        while (performance.now() < busyUntil) {}
        resolve();
      }, 0),
    );
    await new Promise((r) => setTimeout(r, 200));
    const calibrated = longTasks.some((d) => d >= 75);
    longTasks.length = 0;
    const stop = lagProbe();
    const uploader = createUploader({ endpoint: "/files" });
    const t0 = performance.now();
    let hashMs = 0;
    const done = new Promise<string>((resolve, reject) => {
      uploader.on((event) => {
        const u = event.upload;
        lastSnapshot = { event: event.type, state: u.state, hash: u.hash, transfer: u.transfer, notice: u.notice };
        if (!hashMs && u.hash.total > 0 && u.hash.bytes === u.hash.total) hashMs = performance.now() - t0;
        if (event.type === "error" && u.state.kind === "failed") reject(new Error(`${event.error.code}: ${event.error.message}`));
        if (u.state.kind === "done") resolve(u.state.digest);
      });
    });
    await uploader.add([file()]);
    const digest = await done;
    const ms = performance.now() - t0;
    const maxLag = stop();
    // Let the observer deliver the last entries.
    await new Promise((r) => setTimeout(r, 100));
    uploader.destroy();
    return { ms, digest, longTasks: [...longTasks], maxLag, hashMs, calibrated };
  },
};

(globalThis as unknown as { bench: typeof bench }).bench = bench;
export type BenchPage = typeof bench;
