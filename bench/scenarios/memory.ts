/**
 * Item 7: memory must not grow with file size. The same upload (client library in Node, library
 * defaults) at a small and a large size: the client's peak V8 heap and RSS (sampled in the client
 * process every 50 ms) and the edge's workerd RSS peak (sampled from /proc every 50 ms). The
 * ratio large/small should stay near 1; the target allows 1.25x for noise.
 */
import { join } from "node:path";
import { runChild } from "../child.ts";
import type { NodeClientOutput } from "../children/node-client.ts";
import { rssBytes, watch } from "../proc.ts";
import { type BenchContext, MiB, row, type Row, type Scenario } from "../types.ts";

const GROWTH = { on: "ratio", direction: "lower", limit: 1.25, text: "<= 1.25x (no growth with size)" } as const;

export const memory: Scenario = {
  name: "memory",
  items: [7],
  async run(ctx: BenchContext): Promise<Row[]> {
    const runs = [];
    for (const size of ctx.sizes.memory) {
      const f = await ctx.file("memory", size);
      ctx.log(`memory: ${size / MiB} MiB`);
      const idleRss = rssBytes(ctx.stack.workerdPid);
      const r = await watch(ctx.stack.workerdPid, () =>
        runChild<NodeClientOutput>("node-client.ts", { file: f.path, endpoint: `${ctx.stack.baseUrl}/files`, stateDir: join(ctx.dir, `memory-${size}`) }),
      );
      if (r.result.out.digest !== f.digest) throw new Error(`memory: wrong digest ${r.result.out.digest ?? r.result.out.error}`);
      runs.push({ size, client: r.result.out, edgePeak: r.peakRss, idleRss });
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
        metric: `Edge peak RSS (workerd, includes local R2 + DOs), ${pair}`,
        value: large.edgePeak / MiB,
        unit: "MiB",
        baseline: small.edgePeak / MiB,
        baselineLabel: `same at ${l(small.size)}`,
        target: GROWTH,
        note: `workerd RSS before each run: ${(small.idleRss / MiB).toFixed(0)} and ${(large.idleRss / MiB).toFixed(0)} MiB`,
      }),
    ];
  },
};
