/**
 * Item 3 on equal storage (issue 17): the same tus-js-client (bench/children/peer-client.ts, same
 * chunk size, no digest from the client) uploads the same files
 * - to the built edge with STORAGE=s3 (in a workerd of its own), which hashes every byte and
 *   finishes only once the SHA-256 is verified, and
 * - to @tus/server + @tus/s3-store (which verifies nothing),
 * both writing to the same throwaway Ceph RGW (scripts/rgw.sh, memstore: the store's disk is RAM,
 * as fast as this machine can go). Rounds alternate which side goes first; the ratio is the median
 * of the rounds' paired ratios (the VM's speed drifts within a minute).
 *
 * Breakdown, from the same rounds: CPU seconds per MiB of the edge's workerd, of RGW (mon + OSD +
 * radosgw) and of the peer's Node process; and how long the edge's last PATCH took (the finish:
 * Complete, then the server-side copy to the blob path, since no digest was declared).
 */
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import { readFileSync } from "node:fs";
import { edgeWorker } from "../baseline.ts";
import { runChild } from "../child.ts";
import type { PeerClientOutput } from "../children/peer-client.ts";
import { cpuSeconds } from "../proc.ts";
import { startWorkers } from "../workerd.ts";
import { startRgw } from "../../test/support/s3-server.ts";
import { type BenchContext, MiB, mbps, row, type Row, type Scenario } from "../types.ts";
import { startS3PeerServer } from "./peer.ts";
import { startTraceProxy, summarize, type TraceProxy, type TracedRequest } from "../s3-trace.ts";

/** The measurement: 16 MiB chunks. */
const CHUNK = 16 * MiB;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface Side {
  ms: number;
  /** CPU seconds during the upload: the serving process (edge workerd or peer Node), and RGW's daemons. */
  serverCpu: number;
  rgwCpu: number;
  /** Each PATCH's time as tus-js-client saw it (the first includes the upload's start on the server, the last its finish). */
  patchMs: number[];
}

export const uploadS3: Scenario = {
  name: "upload-s3",
  items: [3],
  async run(ctx: BenchContext): Promise<Row[]> {
    const size = ctx.sizes.uploadS3;
    const rounds = ctx.quick ? 1 : 3;
    const label = `${size / MiB} MiB`;
    ctx.log(`upload-s3: starting Ceph RGW`);
    // Room for every round's uploads twice over (the edge copies to the blob path at finish) while
    // RGW's garbage collector frees deleted data only every 30 s.
    const rgw = await startRgw({ bucket: "bench", ramMib: Math.max(1024, Math.ceil((size * rounds * 4) / MiB)) });
    const rgwPids = readFileSync(join(rgw.directory, "pids"), "utf8")
      .trim()
      .split("\n")
      .map((l) => Number(l.split(" ")[1]));
    const rgwCpu = () => rgwPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    ctx.log(`upload-s3: RGW up in ${rgw.seconds.toFixed(1)} s at ${rgw.endpoint}`);
    // BENCH_S3_TRACE=1: both servers reach RGW, and the client each server, through a logging
    // proxy (bench/s3-trace.ts); the log gives the breakdown per upload and per PATCH.
    const trace: TracedRequest[] | undefined = process.env.BENCH_S3_TRACE === "1" ? [] : undefined;
    const proxies: TraceProxy[] = [];
    const traced = async (url: string, via: TracedRequest["via"]) => {
      if (!trace) return url;
      const p = await startTraceProxy(url, via, trace);
      proxies.push(p);
      return p.url;
    };
    const s3Endpoint = await traced(rgw.endpoint, "s3");
    const s3Vars = {
      STORAGE: "s3",
      S3_ENDPOINT: s3Endpoint,
      S3_REGION: rgw.region,
      S3_BUCKET: rgw.bucket,
      S3_ACCESS_KEY_ID: rgw.accessKeyId,
      S3_SECRET_ACCESS_KEY: rgw.secretAccessKey,
    };
    const edge = await startWorkers([edgeWorker("edge-s3", ctx.baseline.edgeModules, s3Vars)], ctx.baseline.r2Address, join(ctx.dir, "edge-s3-state"));
    const edgeUrl = edge.urls["edge-s3"] ?? "";
    const peer = await startS3PeerServer({ ...rgw, endpoint: s3Endpoint });
    const edgeFront = await traced(edgeUrl, "tus");
    const peerFront = await traced(peer.endpoint.replace(/\/files$/, ""), "tus");
    const s3 = new AwsClient({ accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, region: rgw.region, service: "s3" });
    try {
      const measure = async (serverPid: number, run: () => Promise<PeerClientOutput>): Promise<Side & { out: PeerClientOutput }> => {
        const cpu0 = cpuSeconds(serverPid);
        const rgw0 = rgwCpu();
        const t0 = performance.now();
        const out = await run();
        if (out.error) throw new Error(out.error);
        if (trace) ctx.log(`upload-s3 trace (${serverPid === edge.pid ? "edge" : "peer"}):\n${summarize(trace, t0, performance.now())}`);
        return { out, ms: out.ms, serverCpu: cpuSeconds(serverPid) - cpu0, rgwCpu: rgwCpu() - rgw0, patchMs: out.patchMs ?? [] };
      };
      const ours: Side[] = [];
      const theirs: Side[] = [];
      const ratios: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const f = await ctx.file(`upload-s3-${i}`, size);
        const send = (endpoint: string, name: string) =>
          runChild<PeerClientOutput>("peer-client.ts", {
            file: f.path,
            endpoint,
            urlStorage: join(ctx.dir, `upload-s3-${name}-${i}.json`),
            chunkSize: CHUNK,
          }).then((r) => r.out);
        const edgeSide = async () => {
          ctx.log(`upload-s3 round ${i + 1}/${rounds}: tus-js-client -> edge (STORAGE=s3) -> RGW, ${label}`);
          const r = await measure(edge.pid, () => send(`${edgeFront}/files`, "edge"));
          // The edge verified the SHA-256 and linked the blob: HEAD says where, by digest.
          const h = await fetch(new URL(r.out.url ?? "", edgeUrl), { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
          if (h.headers.get("content-location") !== `/blobs/${f.digest}`)
            throw new Error(`edge: upload finished as ${h.headers.get("content-location")}, not /blobs/${f.digest}`);
          return r;
        };
        const peerSide = async () => {
          ctx.log(`upload-s3 round ${i + 1}/${rounds}: tus-js-client -> @tus/server + @tus/s3-store -> RGW, ${label}`);
          const r = await measure(peer.pid, () => send(`${peerFront}/files`, "peer"));
          const id = new URL(r.out.url ?? "").pathname.split("/").pop() ?? "";
          const h = await s3.fetch(`${rgw.endpoint}/${rgw.bucket}/${id}`, { method: "HEAD" });
          if (Number(h.headers.get("content-length")) !== size) throw new Error(`peer: object ${id} is ${h.headers.get("content-length")} bytes, not ${size}`);
          return r;
        };
        const [a, b] = i % 2 === 0 ? [await edgeSide(), await peerSide()] : [undefined, await peerSide()];
        const e = a ?? (await edgeSide());
        ours.push(e);
        theirs.push(b);
        ratios.push(mbps(size, e.ms) / mbps(size, b.ms));
        ctx.log(
          `upload-s3 round ${i + 1}: edge ${mbps(size, e.ms).toFixed(1)} MB/s, peer ${mbps(size, b.ms).toFixed(1)} MB/s, ${(ratios.at(-1) ?? 0).toFixed(2)}x`,
        );
      }
      const mib = size / MiB;
      const perMiB = (sides: Side[], pick: (s: Side) => number) => ((median(sides.map(pick)) / mib) * 1000).toFixed(1);
      const oursMBps = median(ours.map((s) => mbps(size, s.ms)));
      const theirsMBps = median(theirs.map((s) => mbps(size, s.ms)));
      /** Medians over the rounds of: the first PATCH, the PATCHes between, the last one. */
      const patches = (sides: Side[]) => {
        const middle = median(sides.map((s) => median(s.patchMs.slice(1, -1).length ? s.patchMs.slice(1, -1) : s.patchMs)));
        return {
          first: median(sides.map((s) => s.patchMs[0] ?? 0)),
          middle,
          last: median(sides.map((s) => s.patchMs.at(-1) ?? 0)),
          count: ours[0]?.patchMs.length ?? 0,
        };
      };
      const po = patches(ours);
      const pt = patches(theirs);
      const fmtMs = (n: number) => n.toFixed(0);
      return [
        row({
          item: 3,
          metric: `Upload ${label} on equal storage: tus-js-client -> edge (STORAGE=s3, SHA-256 verified) -> Ceph RGW, vs the same client -> @tus/server + @tus/s3-store -> the same RGW`,
          value: oursMBps,
          unit: "MB/s",
          baseline: theirsMBps,
          baselineLabel: `@tus/server + @tus/s3-store, ${CHUNK / MiB} MiB chunks, no verification`,
          ratio: median(ratios),
          target: { on: "ratio", direction: "higher", limit: 1.0, text: ">= 1.0x peer on the same store" },
          note: `median of ${rounds} alternating round(s), paired ratios ${ratios.map((r) => r.toFixed(2)).join(", ")}; edge ${ours.map((s) => mbps(size, s.ms).toFixed(1)).join(", ")} MB/s, peer ${theirs.map((s) => mbps(size, s.ms).toFixed(1)).join(", ")} MB/s; RGW up in ${rgw.seconds.toFixed(1)} s`,
        }),
        row({
          item: 3,
          metric: `(breakdown) CPU per MiB on equal storage, ${label}: the edge's workerd vs the peer's Node process`,
          value: Number(perMiB(ours, (s) => s.serverCpu)),
          unit: "ms/MiB",
          baseline: Number(perMiB(theirs, (s) => s.serverCpu)),
          baselineLabel: "@tus/server + @tus/s3-store (Node, AWS SDK v3)",
          note: `RGW's daemons (mon + OSD + radosgw) during the edge's uploads ${perMiB(ours, (s) => s.rgwCpu)} ms/MiB, during the peer's ${perMiB(theirs, (s) => s.rgwCpu)} ms/MiB`,
        }),
        row({
          item: 3,
          metric: `(breakdown) time of a ${CHUNK / MiB} MiB PATCH between the first and the last (median), edge vs peer`,
          value: po.middle,
          unit: "ms",
          baseline: pt.middle,
          baselineLabel: "@tus/server + @tus/s3-store",
          note: `${po.count} PATCHes per upload; first PATCH ${fmtMs(po.first)} vs ${fmtMs(pt.first)} ms, last PATCH (with the finish: the edge verifies, completes, copies to the blob path, links and cleans up; the peer completes) ${fmtMs(po.last)} vs ${fmtMs(pt.last)} ms`,
        }),
      ];
    } finally {
      for (const p of proxies) await p.close();
      peer.close();
      await edge.close();
      await rgw.close();
    }
  },
};
