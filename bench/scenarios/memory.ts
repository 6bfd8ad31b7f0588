/**
 * Item 7: memory must not grow with file size. The same upload (client library in Node, library
 * defaults but for hashFirst, so that both sizes declare the digest at creation and take the same
 * path through the edge) at a small and a large size: the client's peak V8 heap and RSS (sampled
 * in the client process every 50 ms) and the edge's workerd RSS peak (sampled from /proc every
 * 50 ms). The ratio large/small should stay near 1; the target allows 1.25x for noise.
 *
 * Baselines at the same two sizes tell whose growth it is: one plain PUT and one multipart upload
 * in 8 MiB parts (the edge's storage pattern) into local R2 show what the workers' workerd keeps
 * for the R2 binding's traffic (the simulator runs in a process of its own, not measured here);
 * the bytes sent in 32 MiB requests to a worker that only reads them show what workerd keeps per
 * request (measured: ~0.45 MiB per request, still linear at 6 GiB, with the worker's JS heap at
 * 13 MiB).
 *
 * Every run gets a fresh workerd (the built edge, bench/baseline.ts, with empty state): workerd
 * does not give freed memory back to the system, so on a shared process the second run's peak
 * would include the first run's high-water mark (measured: idle RSS 147 MiB before the 256 MiB
 * upload, 297 MiB before the 2 GiB one, with only +47 MiB of peak above that).
 */
import { join } from "node:path";
import { runChild } from "../child.ts";
import type { NodeClientOutput } from "../children/node-client.ts";
import { type Baseline, startBaseline } from "../baseline.ts";
import { putRange } from "../http.ts";
import { rssBytes, watch } from "../proc.ts";
import { type BenchContext, MiB, row, type Row, type Scenario } from "../types.ts";

/** The client library's chunk size: one PATCH per 32 MiB. */
const REQUEST = 32 * MiB;

const GROWTH = { on: "ratio", direction: "lower", limit: 1.25, text: "<= 1.25x (no growth with size)" } as const;

/** Runs `work` against a new workerd (built edge + baseline, empty state), sampling its RSS. */
async function inFreshWorkerd<T>(ctx: BenchContext, label: string, work: (b: Baseline) => Promise<T>) {
  const b = await startBaseline(join(ctx.dir, label), join(ctx.dir, "build"));
  ctx.stack.exclude.add(b.workerdPid).add(b.r2Pid); // not the page stack's workerd
  try {
    const idleRss = rssBytes(b.workerdPid);
    return { ...(await watch(b.workerdPid, () => work(b))), idleRss };
  } finally {
    await b.close();
  }
}

export const memory: Scenario = {
  name: "memory",
  items: [7],
  async run(ctx: BenchContext): Promise<Row[]> {
    const runs = [];
    for (const size of ctx.sizes.memory) {
      const f = await ctx.file("memory", size);
      ctx.log(`memory: ${size / MiB} MiB`);
      const r = await inFreshWorkerd(ctx, `memory-edge-${size}`, (edge) =>
        // hashFirst covers both sizes: both declare the digest at creation and take the same path
        // (library defaults would send 2 GiB's digest at the end, and its finish would copy it).
        runChild<NodeClientOutput>("node-client.ts", {
          file: f.path,
          endpoint: `${edge.edgeUrl}/files`,
          stateDir: join(ctx.dir, `memory-${size}`),
          hashFirst: size,
        }),
      );
      if (r.result.out.digest !== f.digest) throw new Error(`memory: wrong digest ${r.result.out.digest ?? r.result.out.error}`);
      /** One PUT of the whole file to a baseline route, in a fresh workerd of its own. */
      const baselinePut = (route: string) =>
        inFreshWorkerd(ctx, `memory-${route}-${size}`, async (plain) => {
          const res = await putRange(`${plain.url}/${route}/bench-memory-${size}`, f.path, 0, size);
          if (res.status !== 201) throw new Error(`memory: ${route} ${res.status} ${res.body}`);
        });
      const put = await baselinePut("put");
      const multipart = await baselinePut("multipart");
      const drained = await inFreshWorkerd(ctx, `memory-drain-${size}`, async (plain) => {
        for (let start = 0; start < size; start += REQUEST) {
          const end = Math.min(size, start + REQUEST);
          const res = await putRange(`${plain.url}/drain`, f.path, start, end);
          if (res.status !== 204) throw new Error(`memory: drain ${res.status} ${res.body}`);
        }
      });
      runs.push({
        size,
        client: r.result.out,
        edgePeak: r.peakRss,
        idleRss: r.idleRss,
        putPeak: put.peakRss,
        putIdle: put.idleRss,
        multipartPeak: multipart.peakRss,
        drainPeak: drained.peakRss,
      });
    }
    const [small, large] = runs;
    if (!small || !large) throw new Error("memory: two sizes expected");
    const l = (n: number) => `${n / MiB} MiB`;
    const pair = `${l(large.size)} vs ${l(small.size)}`;
    return [
      row({
        item: 7,
        metric: `Client peak heap (Node, V8 heapUsed), ${pair}`,
        value: large.client.heapPeak / MiB,
        unit: "MiB",
        baseline: small.client.heapPeak / MiB,
        baselineLabel: `same at ${l(small.size)}`,
        target: GROWTH,
      }),
      row({
        item: 7,
        metric: `Client peak RSS (Node), ${pair}`,
        value: large.client.rssPeak / MiB,
        unit: "MiB",
        baseline: small.client.rssPeak / MiB,
        baselineLabel: `same at ${l(small.size)}`,
        target: GROWTH,
        note: `peak external + array buffers: ${(large.client.externalPeak / MiB).toFixed(0)} vs ${(small.client.externalPeak / MiB).toFixed(0)} MiB`,
      }),
      row({
        item: 7,
        metric: `Edge peak RSS (the workers' workerd: Worker + Durable Objects, not the R2 simulator; a fresh one per size), ${pair}`,
        value: large.edgePeak / MiB,
        unit: "MiB",
        baseline: small.edgePeak / MiB,
        baselineLabel: `same at ${l(small.size)}`,
        target: GROWTH,
        note: `workerd RSS at start: ${(small.idleRss / MiB).toFixed(0)} and ${(large.idleRss / MiB).toFixed(0)} MiB`,
      }),
      row({
        item: 7,
        metric: `(baseline) workerd peak RSS during one plain PUT into the same local R2, ${pair}`,
        value: large.putPeak / MiB,
        unit: "MiB",
        baseline: small.putPeak / MiB,
        baselineLabel: `same at ${l(small.size)}`,
        note: `RSS at start: ${(small.putIdle / MiB).toFixed(0)} and ${(large.putIdle / MiB).toFixed(0)} MiB; growth here is the runtime's (the R2 binding's traffic), not the edge's`,
      }),
      row({
        item: 7,
        metric: `(baseline) workerd peak RSS during one R2 multipart upload in 8 MiB parts (the edge's storage pattern, no edge), ${pair}`,
        value: large.multipartPeak / MiB,
        unit: "MiB",
        baseline: small.multipartPeak / MiB,
        baselineLabel: `same at ${l(small.size)}`,
      }),
      row({
        item: 7,
        metric: `(baseline) workerd peak RSS while a worker only reads the same bytes, sent as ${REQUEST / MiB} MiB requests like the client's PATCHes, ${pair}`,
        value: large.drainPeak / MiB,
        unit: "MiB",
        baseline: small.drainPeak / MiB,
        baselineLabel: `same at ${l(small.size)}`,
        note: "no storage, no Durable Object, no edge code: growth here is what workerd keeps per request",
      }),
    ];
  },
};
