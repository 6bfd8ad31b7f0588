/**
 * The peer client: tus-js-client in Node, resumable through its FileUrlStorage. With `hashFirst`
 * it does what an app on tus-js-client must do to verify a whole-file SHA-256: hash the file up
 * front (node:crypto, the fastest hasher here) before the upload starts; it keeps no hasher
 * state, so after a crash it hashes everything again. Input/output as bench/children/node-client.ts.
 */
import { createHash } from "node:crypto";
import { createReadStream, statSync, writeSync } from "node:fs";
import * as tus from "tus-js-client";

export interface PeerClientInput {
  file: string;
  endpoint: string;
  /** FileUrlStorage's JSON file (remembers upload URLs for resuming). */
  urlStorage: string;
  chunkSize: number;
  hashFirst?: boolean;
  killAt?: number;
}

export interface PeerClientOutput {
  killed: boolean;
  ms: number;
  hashRead: number;
  transferred: number;
  resumedUploadAt?: number;
  url?: string;
  error?: string;
  rssPeak: number;
  /** Milliseconds each PATCH took, request sent to response read, in order (the last one includes the server's finish). */
  patchMs?: number[];
}

// The Node build exports FileUrlStorage; the package's types describe the browser build only.
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (path: string) => tus.UrlStorage };

const input = JSON.parse(process.argv[2] ?? "{}") as PeerClientInput;
const size = statSync(input.file).size;
const t0 = performance.now();
let hashRead = 0;
let transferred = 0;
let resumedUploadAt: number | undefined;
let rssPeak = 0;
const patchMs: number[] = [];
let patchStarted = 0;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);

const report = (extra: Partial<PeerClientOutput>) =>
  writeSync(1, `${JSON.stringify({ killed: false, ms: performance.now() - t0, hashRead, transferred, resumedUploadAt, rssPeak, patchMs, ...extra })}\n`);

let digest: string | undefined;
if (input.hashFirst) {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(input.file, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    hashRead += (chunk as Buffer).length;
  }
  digest = `sha256:${hash.digest("hex")}`;
}

const upload = new tus.Upload(createReadStream(input.file), {
  endpoint: input.endpoint,
  uploadSize: size,
  chunkSize: input.chunkSize,
  retryDelays: null,
  metadata: { filename: "peer.bin", ...(digest ? { digest } : {}) },
  urlStorage: new FileUrlStorage(input.urlStorage),
  fingerprint: async () => `bench-peer:${input.file}:${size}`,
  storeFingerprintForResuming: true,
  onBeforeRequest(req) {
    if (req.getMethod() === "PATCH") patchStarted = performance.now();
  },
  onAfterResponse(req) {
    if (req.getMethod() === "PATCH") patchMs.push(performance.now() - patchStarted);
  },
  removeFingerprintOnSuccess: true,
  onProgress(sent) {
    transferred = sent;
    if (input.killAt !== undefined && sent >= input.killAt * size) {
      report({ killed: true });
      process.kill(process.pid, "SIGKILL");
    }
  },
  onSuccess() {
    clearInterval(sampler);
    report({ url: upload.url ?? undefined });
    process.exit(0);
  },
  onError(error) {
    report({ error: String(error) });
    process.exit(1);
  },
});
const previous = await upload.findPreviousUploads();
if (previous[0]) {
  upload.resumeFromPreviousUpload(previous[0]);
  // tus-js-client HEADs the URL on start; the first progress after it is where it resumed.
  const original = upload.options.onProgress;
  upload.options.onProgress = (sent, total) => {
    resumedUploadAt ??= sent;
    original?.(sent, total);
  };
}
upload.start();
