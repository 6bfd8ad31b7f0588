/**
 * The browser Hasher: a dedicated module Worker per running hash (terminated when it ends), and
 * main-thread access to the worker's checkpoint database for peek/forget.
 */
import { createStore, del, get } from "idb-keyval";
import { checkCheckpoint, type HashJobResult } from "./hash-job.ts";
import type { Hasher, HashRun } from "./hasher.ts";

/** Must equal CHECKPOINTS_DB in hasher.worker.ts (not imported: that would run the worker here). */
const CHECKPOINTS_DB = "edge-upload-hasher";

export type WorkerRequest =
  | { type: "hash"; key: string; file: Blob; checkpointInterval?: number; rate?: number }
  | { type: "pause" };

export type WorkerResponse =
  | { type: "start"; resumedAt: number | undefined }
  | { type: "progress"; offset: number; bytesRead: number }
  | { type: "result"; result: HashJobResult }
  | { type: "error"; name: string; message: string };

export function createWorkerHasher(): Hasher {
  const db = createStore(CHECKPOINTS_DB, "checkpoints");
  return {
    start(input): HashRun {
      const worker = new Worker(new URL("./hasher.worker.ts", import.meta.url), { type: "module", name: "edge-upload-hasher" });
      const result = new Promise<HashJobResult>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<WorkerResponse>) => {
          const msg = event.data;
          if (msg.type === "start") input.onStart?.(msg.resumedAt);
          else if (msg.type === "progress") input.onProgress?.(msg.offset, msg.bytesRead);
          else {
            worker.terminate();
            if (msg.type === "result") resolve(msg.result);
            else reject(Object.assign(new Error(msg.message), { name: msg.name }));
          }
        };
        worker.onerror = (event) => {
          worker.terminate();
          reject(new Error(`hasher worker failed: ${event.message}`));
        };
      });
      const request: WorkerRequest = { type: "hash", key: input.key, file: input.file, checkpointInterval: input.checkpointInterval, rate: input.rate };
      worker.postMessage(request);
      return { result, pause: () => worker.postMessage({ type: "pause" } satisfies WorkerRequest) };
    },
    peek: async (key, size) => checkCheckpoint(await get(key, db), size),
    forget: (key) => del(key, db),
  };
}
