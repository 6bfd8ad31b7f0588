/**
 * The browser's hasher: one Web Worker per running hash. It hashes the File's bytes, which its
 * reader worker sends it (reader.ts), with hash-wasm and checkpoints into IndexedDB
 * (persist/idb.ts; job.ts does the work), telling the copier of each when the file is also copied. Bundled by Vite from
 * `new Worker(new URL("./hasher.worker.ts", import.meta.url))` in worker-hasher.ts.
 */
import { createIdbCheckpointStore } from "../persist/idb.ts";
import { COPIER_ROOM, type CopierInbound, passToCopier } from "../staging/pass.ts";
import type { CheckpointStore } from "./checkpoint.ts";
import { DEFAULT_SLICE_SIZE, runHashJob } from "./job.ts";
import { portChunks } from "./reader.ts";
import type { WorkerRequest, WorkerResponse } from "./worker-hasher.ts";

// DOM and WebWorker libs clash in one program; this is the part of the worker scope we use.
declare const self: {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerResponse): void;
};

const controller = new AbortController();
const idb = createIdbCheckpointStore();

/**
 * While the file is copied (staging/copier.ts), the copier is told of each checkpoint as it is
 * taken, which is how it learns how far the hash is; the checkpoint is still stored here and
 * awaited, so job.ts's promise holds (the newest durable checkpoint at most one interval behind,
 * the paused one stored before "paused" is answered). Stored by the copier, as it once was,
 * checkpoints waited on a second thread's queue and died with it: a SIGKILL in CI resumed
 * 36 MiB behind the hash, and a pause ended the copier before it stored the paused offset.
 */
function tellingCopier(copier: MessagePort): CheckpointStore {
  return {
    ...idb,
    set: (key, checkpoint) => {
      copier.postMessage({ type: "checkpoint", offset: checkpoint.offset } satisfies CopierInbound);
      return idb.set(key, checkpoint);
    },
  };
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "pause") {
    controller.abort();
    return;
  }
  const { key, file, reader, copier, passBuffers, checkpointInterval, rate } = msg;
  const pass = copier && passBuffers ? passToCopier(copier) : undefined;
  runHashJob({
    key,
    size: file.size,
    read: async (start, end) => new Uint8Array(await file.slice(start, end).arrayBuffer()),
    // 3 buffers of 4 MiB: one being hashed, two being filled (measured: enough to never wait); and those the copier may hold.
    chunks: (start) => portChunks(reader, start, DEFAULT_SLICE_SIZE, pass ? 3 + COPIER_ROOM : 3, pass),
    checkpoints: copier ? tellingCopier(copier) : idb,
    checkpointInterval,
    rate,
    signal: controller.signal,
    onStart: (resumedAt) => {
      copier?.postMessage({ type: "start", offset: resumedAt ?? 0 } satisfies CopierInbound);
      self.postMessage({ type: "start", resumedAt });
    },
    onProgress: (offset, bytesRead) => self.postMessage({ type: "progress", offset, bytesRead }),
  })
    .finally(() => copier?.postMessage({ type: "end" } satisfies CopierInbound))
    .then(
      (result) => self.postMessage({ type: "result", result }),
      (error: unknown) =>
        self.postMessage({
          type: "error",
          name: error instanceof Error ? error.name : "Error",
          message: error instanceof Error ? error.message : String(error),
        }),
    );
};
