/**
 * Item 1: the uploader's hashing throughput in Chromium (its Web Workers: a reader, hash-wasm,
 * IndexedDB checkpoints) against raw hash-wasm over the same bytes already in memory in the same
 * page, and against native SHA-256 (node:crypto, OpenSSL) on this machine.
 *
 * The verdict is the median of paired ratios: each round runs the uploader and raw hash-wasm back
 * to back (order alternating, so a drift in load favours neither) and gives one ratio. This VM's
 * speed swings by up to half within a minute; taking the best of each side apart let one lucky
 * raw round (218 against 143-152 MB/s in the two others) set the ratio for all of them. The note
 * keeps the per-round ratios and the best of each side.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { openBenchPage } from "../browser.ts";
import { type BenchContext, MiB, mbps, row, type Row, type Scenario } from "../types.ts";

export const hash: Scenario = {
  name: "hash",
  items: [1],
  async run(ctx: BenchContext): Promise<Row[]> {
    const size = ctx.sizes.hash;
    const f = await ctx.file("hash", size);
    const rounds = ctx.quick ? 1 : 5;
    ctx.log(`hash: ${size / MiB} MiB in Chromium, ${rounds} paired rounds`);
    // On a profile on disk, as a person's browser: a fresh context is a private window, whose
    // in-memory OPFS writes at ~15-30 MB/s (bench/browser.ts); that case gets its own row below.
    const b = await openBenchPage(ctx.stack.baseUrl, { profile: true });
    const pairs: { uploader: number; raw: number; startMs: number }[] = [];
    // Issue 18: the same hasher keeping the copy in OPFS, paired with a run without it (order alternating).
    const staged: { plain: number; staged: number; bytes: number; end: string; copyMs: number; spent?: { read: number; write: number; commit: number } }[] = [];
    let slices = Number.POSITIVE_INFINITY;
    try {
      await b.setFile(f.path);
      const runUploader = async (i: number) => {
        const u = await b.call("hashUploader", `bench-hash-${i}`);
        if (u.digest !== f.digest) throw new Error(`hash: uploader digest ${u.digest}`);
        return u;
      };
      const runStaged = async (i: number) => {
        const u = await b.call("hashUploader", `bench-stage-${i}`, true);
        if (u.digest !== f.digest) throw new Error(`hash: staged uploader digest ${u.digest}`);
        if (u.stageEnd !== "whole") throw new Error(`hash: staging ended "${u.stageEnd}", not with the whole file kept`);
        return u;
      };
      const runRaw = async () => {
        const r = await b.call("hashRaw");
        if (r.digest !== f.digest) throw new Error(`hash: raw digest ${r.digest}`);
        return r;
      };
      for (let i = 0; i < rounds; i++) {
        const rawFirst = i % 2 === 1;
        const early = rawFirst ? await runRaw() : undefined;
        const u = await runUploader(i);
        const r = early ?? (await runRaw());
        pairs.push({ uploader: u.ms, raw: r.ms, startMs: u.startMs });
        const s = await b.call("hashSlices");
        if (s.digest !== f.digest) throw new Error(`hash: slices digest ${s.digest}`);
        slices = Math.min(slices, s.ms);
        const stagedFirst = i % 2 === 0;
        const stagedEarly = stagedFirst ? await runStaged(i) : undefined;
        const plain = await runUploader(rounds + i);
        const st = stagedEarly ?? (await runStaged(i));
        staged.push({ plain: plain.ms, staged: st.ms, bytes: st.stagedBytes, end: st.stageEnd, copyMs: st.copyMs, spent: st.spent });
      }
    } finally {
      await b.close();
    }
    // One pair in a private window (OPFS in memory): the copy is slower than the hash there, and
    // must not slow it down.
    const priv = await openBenchPage(ctx.stack.baseUrl);
    let inPrivate: { plain: number; staged: number; end: string; copyMs: number };
    try {
      await priv.setFile(f.path);
      const st = await priv.call("hashUploader", "bench-stage-private", true);
      const plain = await priv.call("hashUploader", "bench-hash-private");
      if (st.digest !== f.digest || plain.digest !== f.digest) throw new Error("hash: private window digest");
      inPrivate = { plain: plain.ms, staged: st.ms, end: st.stageEnd, copyMs: st.copyMs };
    } finally {
      await priv.close();
    }
    // A ratio of speeds: raw time over uploader time.
    const ratios = pairs.map((p) => p.raw / p.uploader);
    const ratio = median(ratios);
    const uploader = Math.min(...pairs.map((p) => p.uploader));
    const raw = Math.min(...pairs.map((p) => p.raw));
    const startMs = median(pairs.map((p) => p.startMs));
    const data = await readFile(f.path);
    let native = Number.POSITIVE_INFINITY;
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      createHash("sha256").update(data).digest();
      native = Math.min(native, performance.now() - t0);
    }
    const label = `${size / MiB} MiB`;
    const stageRatios = staged.map((p) => p.plain / p.staged);
    const stagedBytes = Math.max(...staged.map((p) => p.bytes));
    // Where the copier's time went (its own clock, median over rounds), as throughputs of the file's size.
    const spentRate = (part: "read" | "write" | "commit") => mbps(size, median(staged.map((p) => p.spent?.[part] ?? Number.NaN))).toFixed(0);
    const breakdown = `copier: read ${spentRate("read")}, write ${spentRate("write")}, flush ${spentRate("commit")} MB/s (each alone, over the file); hasher alone ${mbps(size, median(staged.map((p) => p.plain))).toFixed(0)} MB/s`;
    return [
      row({
        item: 1,
        metric: `Uploader hashing with the copy kept in OPFS (issue 18), profile on disk, ${label}`,
        value: mbps(size, median(staged.map((p) => p.staged))),
        unit: "MB/s",
        baseline: mbps(size, median(staged.map((p) => p.plain))),
        baselineLabel: "the same hasher without staging, same file, same page",
        ratio: median(stageRatios),
        target: { on: "ratio", direction: "higher", limit: 0.9, text: ">= 0.90x (staging costs <= 10%)" },
        note: `ratio: median of ${rounds} paired rounds, order alternating (${stageRatios.map((x) => x.toFixed(2)).join(", ")}); the copier (a worker beside the hasher) had the whole copy ${median(staged.map((p) => p.copyMs)).toFixed(0)} ms after the start (median; ${mbps(size, median(staged.map((p) => p.copyMs))).toFixed(0)} MB/s read + written), the hash ${median(staged.map((p) => p.staged)).toFixed(0)} ms; ${breakdown}`,
      }),
      row({
        item: 1,
        metric: `Uploader hashing with the copy kept in OPFS in a private window (OPFS in memory, slow writes), ${label}`,
        value: mbps(size, inPrivate.staged),
        unit: "MB/s",
        baseline: mbps(size, inPrivate.plain),
        baselineLabel: "the same hasher without staging, same private window",
        ratio: inPrivate.plain / inPrivate.staged,
        note: `one pair; the copy ended "${inPrivate.end}" ${inPrivate.copyMs.toFixed(0)} ms after the start (the copier stops on storage in memory: docs/client.md "Private windows")`,
      }),
      row({
        item: 1,
        metric: `Bytes written to OPFS by staging, ${label}`,
        value: stagedBytes / MiB,
        unit: "MiB",
        baseline: size / MiB,
        baselineLabel: "the file's size",
        ratio: stagedBytes / size,
        note: "the copy's size when it was whole (one write per byte; no rewrite on the createSyncAccessHandle path)",
      }),
      row({
        item: 1,
        metric: `Uploader hashing in Chromium (Web Worker, reads + IndexedDB checkpoints), ${label}`,
        value: mbps(size, median(pairs.map((p) => p.uploader))),
        unit: "MB/s",
        baseline: mbps(size, median(pairs.map((p) => p.raw))),
        baselineLabel: "raw hash-wasm on the same bytes in memory, same page",
        ratio,
        target: { on: "ratio", direction: "higher", limit: 0.95, text: ">= 0.95x raw hash-wasm" },
        note: `median speeds; ratio: median of ${rounds} paired rounds (${ratios.map((x) => x.toFixed(2)).join(", ")}); best of each: ${mbps(size, uploader).toFixed(0)} vs ${mbps(size, raw).toFixed(0)} MB/s; workers started at page load, ${startMs.toFixed(0)} ms from start() to the checkpoint read`,
      }),
      row({
        item: 1,
        metric: `Where it goes: hash-wasm reading the File in 4 MiB slices (main thread, no worker, no IndexedDB), ${label}`,
        value: mbps(size, slices),
        unit: "MB/s",
        baseline: mbps(size, raw),
        baselineLabel: "raw hash-wasm on the same bytes in memory",
      }),
      row({
        item: 1,
        metric: `Uploader hashing in Chromium vs native SHA-256, ${label}`,
        value: mbps(size, uploader),
        unit: "MB/s",
        baseline: mbps(size, native),
        baselineLabel: "node:crypto (OpenSSL) on this machine",
      }),
    ];
  },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
