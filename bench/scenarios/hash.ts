/**
 * Item 1: the uploader's hashing throughput in Chromium (its Web Workers: a reader, hash-wasm,
 * IndexedDB checkpoints) against raw hash-wasm over the same bytes already in memory in the same
 * page, and against native SHA-256 (node:crypto, OpenSSL) on this machine. Runs are interleaved
 * and the best of each kept, so a burst of load from elsewhere hurts both sides alike.
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
    const rounds = ctx.quick ? 1 : 3;
    ctx.log(`hash: ${size / MiB} MiB in Chromium, ${rounds} interleaved rounds`);
    const b = await openBenchPage(ctx.stack.baseUrl);
    let uploader = Number.POSITIVE_INFINITY;
    let startMs = 0;
    let raw = Number.POSITIVE_INFINITY;
    let slices = Number.POSITIVE_INFINITY;
    try {
      await b.setFile(f.path);
      for (let i = 0; i < rounds; i++) {
        const u = await b.call("hashUploader", `bench-hash-${i}`);
        if (u.digest !== f.digest) throw new Error(`hash: uploader digest ${u.digest}`);
        if (u.ms < uploader) startMs = u.startMs;
        uploader = Math.min(uploader, u.ms);
        const r = await b.call("hashRaw");
        if (r.digest !== f.digest) throw new Error(`hash: raw digest ${r.digest}`);
        raw = Math.min(raw, r.ms);
        const s = await b.call("hashSlices");
        if (s.digest !== f.digest) throw new Error(`hash: slices digest ${s.digest}`);
        slices = Math.min(slices, s.ms);
      }
    } finally {
      await b.close();
    }
    const data = await readFile(f.path);
    let native = Number.POSITIVE_INFINITY;
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      createHash("sha256").update(data).digest();
      native = Math.min(native, performance.now() - t0);
    }
    const label = `${size / MiB} MiB`;
    return [
      row({
        item: 1,
        metric: `Uploader hashing in Chromium (Web Worker, reads + IndexedDB checkpoints), ${label}`,
        value: mbps(size, uploader),
        unit: "MB/s",
        baseline: mbps(size, raw),
        baselineLabel: "raw hash-wasm on the same bytes in memory, same page",
        target: { on: "ratio", direction: "higher", limit: 0.95, text: ">= 0.95x raw hash-wasm" },
        note: `workers started at page load; ${startMs.toFixed(0)} ms from start() to the checkpoint read`,
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
