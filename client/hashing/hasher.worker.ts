/**
 * The browser's hasher: one Web Worker per running hash. It hashes the File's bytes, which its
 * reader worker sends it (reader.ts), with hash-wasm and checkpoints into IndexedDB
 * (persist/idb.ts; job.ts does the work). Bundled by Vite from
 * `new Worker(new URL("./hasher.worker.ts", import.meta.url))` in worker-hasher.ts.
 */
import { createIdbCheckpointStore } from "../persist/idb.ts";
import { DEFAULT_SLICE_SIZE, runHashJob } from "./job.ts";
import { portChunks } from "./reader.ts";
import type { WorkerRequest, WorkerResponse } from "./worker-hasher.ts";

// DOM and WebWorker libs clash in one program; this is the part of the worker scope we use.
declare const self: {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerResponse): void;
};

const controller = new AbortController();

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "pause") {
    controller.abort();
    return;
  }
  const { key, file, reader, checkpointInterval, rate } = msg;
  runHashJob({
    key,
    size: file.size,
    read: async (start, end) => new Uint8Array(await file.slice(start, end).arrayBuffer()),
    // 3 buffers of 4 MiB: one being hashed, two being filled (measured: enough to never wait).
    // The copy's progress (staging/) comes in order with the bytes, so it reaches the page before the result.
    chunks: (start) => portChunks(reader, start, DEFAULT_SLICE_SIZE, 3, (stage) => self.postMessage({ type: "stage", event: stage })),
    checkpoints: createIdbCheckpointStore(),
    checkpointInterval,
    rate,
    signal: controller.signal,
    onStart: (resumedAt) => self.postMessage({ type: "start", resumedAt }),
    onProgress: (offset, bytesRead) => self.postMessage({ type: "progress", offset, bytesRead }),
  }).then(
    (result) => self.postMessage({ type: "result", result }),
    (error: unknown) =>
      self.postMessage({
        type: "error",
        name: error instanceof Error ? error.name : "Error",
        message: error instanceof Error ? error.message : String(error),
      }),
  );
};
