/**
 * Item 6: finish latency. The bench speaks tus itself (POST, then 32 MiB PATCHes streamed from
 * the file) so it can time the last PATCH from its last body byte leaving this process to the
 * edge's 204 (blob validated, moved and linked), against the built edge in workerd
 * (bench/baseline.ts), with the digest declared three ways: at creation (what the client library
 * does up to 1 GiB: it hashes first), on every PATCH once a hasher running alongside the upload
 * has it (what the library does above that: the edge then moves the parts stored so far, once,
 * mid-upload), and only on the final PATCH (a client that sends it last: the finish must move the
 * whole upload, which on the R2 binding means a copy through the worker). The
 * final PATCH carries only the last 1 MiB: the socket takes in a body before the worker has
 * processed it, so a large final body would time its processing, not the finish. workerd's CPU
 * time for that final PATCH tells whether the data was read again (1 GiB costs seconds of CPU).
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { cpuSeconds } from "../proc.ts";
import { hashCpuPerMiB } from "./upload.ts";
import { send } from "../http.ts";
import { type BenchContext, MiB, mbps, row, type Row, type Scenario } from "../types.ts";

const CHUNK = 32 * MiB;
const FINAL_BODY = 1 * MiB;
const TUS = { "Tus-Resumable": "1.0.0" };

/**
 * Under vite dev, the dev server sometimes failed to reach workerd for the request after a long
 * one (500 "fetch failed", from its undici client; not the edge). The bench now talks to workerd
 * directly; should one still happen, it asks HEAD for the offset and sends again, as a tus client
 * does, and counts how often.
 */
const viteGlitch = (r: { status: number; body: string }) => r.status === 500 && r.body.includes("fetch failed");

async function headOffset(url: string): Promise<number> {
  for (let i = 0; ; i++) {
    const h = await send(url, "HEAD", TUS);
    if (h.status === 200) return Number(h.headers["upload-offset"]);
    if (i >= 3 || !viteGlitch(h)) throw new Error(`finish: HEAD ${h.status}`);
  }
}

function reprDigest(digest: string): string {
  return `sha-256=:${Buffer.from(digest.slice("sha256:".length), "hex").toString("base64")}:`;
}

/** When the sender declares the whole upload's digest. */
export type DigestTiming = "creation" | "hashed" | "end";

/**
 * The file's SHA-256 from hash-wasm in a worker thread, as the Node client library computes it
 * while it uploads (`hashFirst: false`): it resolves about when the library would have it.
 */
function hashAlongside(path: string): Promise<string> {
  const hashWasm = createRequire(import.meta.url).resolve("hash-wasm");
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { openSync, readSync, closeSync } = require("node:fs");
    require(workerData.hashWasm).createSHA256().then((h) => {
      const fd = openSync(workerData.path, "r");
      const buf = new Uint8Array(4 * 1024 * 1024);
      for (let n; (n = readSync(fd, buf)) > 0; ) h.update(buf.subarray(0, n));
      closeSync(fd);
      parentPort.postMessage("sha256:" + h.digest("hex"));
    });`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { path, hashWasm } });
    worker.once("message", (digest: string) => {
      resolve(digest);
      void worker.terminate();
    });
    worker.once("error", reject);
  });
}

/** Where uploadAndTimeFinish sends to: the built edge by default, or the `npm start` stack. */
export interface EdgeTarget {
  url: string;
  readonly workerdPid: number;
}

export async function uploadAndTimeFinish(ctx: BenchContext, path: string, size: number, digest: string, timing: DigestTiming, target?: EdgeTarget) {
  const atCreation = timing === "creation";
  const edge: EdgeTarget = target ?? { url: ctx.baseline.edgeUrl, workerdPid: ctx.baseline.workerdPid };
  const base = edge.url;
  const t0 = performance.now();
  const cpuStart = cpuSeconds(edge.workerdPid);
  const created = await send(`${base}/files`, "POST", {
    ...TUS,
    "Upload-Length": size,
    "Upload-Metadata": `filename ${Buffer.from("finish.bin").toString("base64")}`,
    ...(atCreation ? { "Repr-Digest": reprDigest(digest) } : {}),
  });
  if (created.status !== 201) throw new Error(`finish: POST ${created.status} ${created.body}`);
  const url = new URL(String(created.headers.location), base).toString();
  let hashed: string | undefined;
  if (timing === "hashed") {
    hashAlongside(path).then(
      (d) => void (hashed = d),
      (error: unknown) => ctx.error(`finish: hashing alongside: ${String(error)}`),
    );
  }
  /** Where the digest was first sent, and how long each non-final PATCH took. */
  let declaredAt: number | undefined;
  let declaringMs = 0;
  const patchMs: number[] = [];
  let last: Awaited<ReturnType<typeof send>> | undefined;
  let cpuAtLastByte = 0;
  let retries = 0;
  const lastStart = Math.max(0, size - FINAL_BODY);
  for (let offset = 0; offset < size; ) {
    const end = offset < lastStart ? Math.min(lastStart, offset + CHUNK) : size;
    const final = end === size;
    const cpu0 = final ? cpuSeconds(edge.workerdPid) : 0;
    const declaring = timing === "hashed" && hashed !== undefined;
    if (declaring && hashed !== digest) throw new Error(`finish: hashed alongside ${hashed}, expected ${digest}`);
    const sentAt = performance.now();
    const res = await send(
      url,
      "PATCH",
      {
        ...TUS,
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": end - offset,
        "Upload-Offset": offset,
        ...((final && !atCreation) || declaring ? { "Repr-Digest": reprDigest(digest) } : {}),
      },
      { path, start: offset, end },
    );
    if (viteGlitch(res) && !final && retries < 5) {
      retries++;
      offset = await headOffset(url);
      continue;
    }
    if (res.status !== 204) throw new Error(`finish: PATCH at ${offset}: ${res.status} ${res.body.slice(0, 300)}`);
    if (!final) {
      if (declaring && declaredAt === undefined) {
        declaredAt = offset;
        declaringMs = res.responseAt - sentAt;
      } else patchMs.push(res.responseAt - sentAt);
    }
    if (final) {
      last = res;
      // CPU spent from the start of the final PATCH (its body included) to the 204.
      cpuAtLastByte = cpuSeconds(edge.workerdPid) - cpu0;
    }
    offset = end;
  }
  if (!last) throw new Error("finish: no final PATCH");
  const location = String(last.headers["content-location"] ?? "");
  if (location !== `/blobs/${digest}`) throw new Error(`finish: Content-Location ${location}`);
  for (let i = 0; ; i++) {
    const blob = await send(new URL(location, base).toString(), "HEAD", {});
    if (blob.status === 200) break;
    if (i >= 3 || !viteGlitch(blob)) throw new Error(`finish: blob HEAD ${blob.status}`);
    retries++;
  }
  return {
    totalMs: last.responseAt - t0,
    edgeCpu: cpuSeconds(edge.workerdPid) - cpuStart,
    retries,
    ms: last.responseAt - last.lastByteAt,
    finalPatchCpuMs: cpuAtLastByte * 1000,
    finalBytes: size - lastStart,
    declaredAt,
    declaringMs,
    medianPatchMs: patchMs.sort((a, b) => a - b)[Math.floor(patchMs.length / 2)] ?? 0,
  };
}

export const finish: Scenario = {
  name: "finish",
  items: [6],
  async run(ctx: BenchContext): Promise<Row[]> {
    const size = ctx.sizes.finish;
    const label = `${size / MiB} MiB`;
    const rows: Row[] = [];
    const how: Record<DigestTiming, string> = {
      creation: "declared at creation",
      hashed: "sent once hashed (hashing alongside the upload)",
      end: "sent only on the last PATCH",
    };
    for (const timing of ["creation", "hashed", "end"] as const) {
      const f = await ctx.file(`finish-${timing}`, size);
      ctx.log(`finish: ${label}, digest ${how[timing]}`);
      let r: Awaited<ReturnType<typeof uploadAndTimeFinish>>;
      try {
        r = await uploadAndTimeFinish(ctx, f.path, size, f.digest, timing);
      } catch (error) {
        ctx.error(`finish (${how[timing]}): ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      if (timing === "creation") {
        const hashCpu = await hashCpuPerMiB(f.path, size);
        rows.push(
          row({
            item: 4,
            metric: `Edge CPU per MiB, ${label} with the digest declared at creation (no copy at finish)`,
            value: (r.edgeCpu / (size / MiB)) * 1000,
            unit: "ms/MiB",
            baseline: hashCpu * 1000,
            baselineLabel: "hash-wasm SHA-256 alone on the same bytes (CPU time)",
            target: { on: "ratio", direction: "lower", limit: 1.3, text: "<= 1.3x hashing alone" },
            note: "the bare tus sender's upload below (the workers' workerd; the R2 simulator runs in a process of its own)",
          }),
        );
        rows.push(
          row({
            item: 3,
            metric: `Upload ${label}: a bare tus sender (this harness, 32 MiB PATCHes, no hashing) -> edge`,
            value: mbps(size, r.totalMs),
            unit: "MB/s",
            note: "what the edge takes in when the client costs nothing: the client library's number against this one shows the client's share",
          }),
        );
      }
      const notes = [`workerd CPU for the final PATCH (${(r.finalBytes / MiB).toFixed(0)} MiB body + finish): ${r.finalPatchCpuMs.toFixed(0)} ms`];
      if (timing === "hashed") {
        notes.push(
          r.declaredAt === undefined
            ? "the hash finished only with the last PATCH"
            : `digest first sent on the PATCH at ${(r.declaredAt / MiB).toFixed(0)} MiB, which moved the ${(r.declaredAt / MiB).toFixed(0)} MiB stored before it to the blob path: that PATCH took ${(r.declaringMs / 1000).toFixed(1)} s against ${(r.medianPatchMs / 1000).toFixed(1)} s for the others (median)`,
        );
      }
      if (timing === "end")
        notes.push(
          "the finish moves the whole upload: the R2 binding has no copy, so it streams through the worker (docs/s3.md: R2's S3 API copies server-side)",
        );
      if (r.retries) notes.push(`${r.retries} request(s) retried after a vite dev "fetch failed"`);
      rows.push(
        row({
          item: 6,
          metric: `Finish ${label}, digest ${how[timing]}: last byte -> blob linked`,
          value: r.ms,
          unit: "ms",
          target: { on: "value", direction: "lower", limit: 1000, text: "<= 1000 ms, no re-read" },
          note: notes.join("; "),
        }),
      );
    }
    return rows;
  },
};
