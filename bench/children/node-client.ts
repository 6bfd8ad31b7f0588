/**
 * One upload with the project's client library in Node (client/node.ts), in its own process so
 * it can be SIGKILLed mid-way and its heap measured alone. Input: one JSON argument. Output: one
 * JSON line on stdout (the last line), also when it kills itself at `killAt`.
 */
import { writeSync } from "node:fs";
import { createNodeUploader, fileFromPath } from "../../client/node.ts";
import type { UploadSnapshot } from "../../client/types.ts";

export interface NodeClientInput {
  file: string;
  endpoint: string;
  stateDir: string;
  /** SIGKILL this process once this fraction of the file has been handed to PATCH requests. */
  killAt?: number;
  chunkSize?: number;
  hashFirst?: boolean | number;
  hashing?: "native" | "resumable";
}

export interface NodeClientOutput {
  killed: boolean;
  ms: number;
  digest?: string;
  blobUrl?: string;
  error?: string;
  hashRead: number;
  sent: number;
  transferred: number;
  resumedHashAt?: number;
  resumedUploadAt?: number;
  heapPeak: number;
  rssPeak: number;
  externalPeak: number;
  /** CPU seconds (user + system) this client process used. */
  cpu: number;
}

const input = JSON.parse(process.argv[2] ?? "{}") as NodeClientInput;
let heapPeak = 0;
let rssPeak = 0;
let externalPeak = 0;
const sample = () => {
  const m = process.memoryUsage();
  heapPeak = Math.max(heapPeak, m.heapUsed);
  rssPeak = Math.max(rssPeak, m.rss);
  externalPeak = Math.max(externalPeak, m.external + m.arrayBuffers);
};
const sampler = setInterval(sample, 50);
const t0 = performance.now();

function report(u: UploadSnapshot | undefined, extra: Partial<NodeClientOutput>): void {
  sample();
  const out: NodeClientOutput = {
    killed: false,
    ms: performance.now() - t0,
    hashRead: u?.counters.hashRead ?? 0,
    sent: u?.counters.sent ?? 0,
    transferred: u?.transfer.bytes ?? 0,
    resumedHashAt: u?.resumedHashAt,
    resumedUploadAt: u?.resumedUploadAt,
    heapPeak,
    rssPeak,
    externalPeak,
    cpu: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    ...extra,
  };
  // Synchronous: the kill follows immediately and must not lose the line.
  writeSync(1, `${JSON.stringify(out)}\n`);
}

const file = await fileFromPath(input.file);
const uploader = createNodeUploader({
  endpoint: input.endpoint,
  stateDir: input.stateDir,
  concurrency: 1,
  ...(input.chunkSize ? { chunkSize: input.chunkSize } : {}),
  ...(input.hashFirst !== undefined ? { hashFirst: input.hashFirst } : {}),
  ...(input.hashing ? { hashing: input.hashing } : {}),
});

if (input.killAt !== undefined) {
  const limit = input.killAt * file.size;
  const poll = setInterval(() => {
    const u = uploader.list()[0];
    if (u && u.counters.sent >= limit && u.transfer.bytes >= limit) {
      clearInterval(poll);
      report(u, { killed: true });
      process.kill(process.pid, "SIGKILL");
    }
  }, 2);
}

uploader.on((event) => {
  const u = event.upload;
  if (event.type === "error" && u.state.kind === "failed") {
    report(u, { error: `${event.error.code}: ${event.error.message}` });
    process.exit(1);
  }
  if (u.state.kind === "done") {
    clearInterval(sampler);
    report(u, { digest: u.state.digest, blobUrl: u.state.blobUrl });
    uploader.destroy();
    process.exit(0);
  }
});
await uploader.add([file]);
