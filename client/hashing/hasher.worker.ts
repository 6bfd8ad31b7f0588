/**
 * The browser's hasher: one Web Worker per running hash. It hashes the File's bytes, which its
 * reader worker sends it (client/file-reader.ts), with hash-wasm and checkpoints into its own
 * IndexedDB database (client/hash-job.ts does the work). Bundled by Vite from `new Worker(new URL("./hasher.worker.ts", import.meta.url))`.
 */
import { createStore, del, get, set } from "idb-keyval";
import { portChunks } from "./file-reader.ts";
import { type CheckpointStore, DEFAULT_SLICE_SIZE, runHashJob } from "./hash-job.ts";
import type { WorkerRequest, WorkerResponse } from "./worker-hasher.ts";

// DOM and WebWorker libs clash in one program; this is the part of the worker scope we use.
declare const self: {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerResponse): void;
};

export const CHECKPOINTS_DB = "edge-upload-hasher";

function idbCheckpoints(): CheckpointStore {
  const db = createStore(CHECKPOINTS_DB, "checkpoints");
  return {
    get: (key) => get(key, db),
    set: (key, checkpoint) => set(key, checkpoint, db),
    delete: (key) => del(key, db),
  };
}

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
    chunks: (start) => portChunks(reader, start, DEFAULT_SLICE_SIZE, 3),
    checkpoints: idbCheckpoints(),
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
