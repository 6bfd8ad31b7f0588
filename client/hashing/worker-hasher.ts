/**
 * The browser Hasher: per running hash a dedicated module Worker that hashes and one that reads
 * the file for it (both terminated when it ends), and main-thread access to the worker's
 * checkpoint database for peek/forget.
 */
import { createIdbCheckpointStore } from "../persist/idb.ts";
import { checkCheckpoint } from "./checkpoint.ts";
import type { Hasher, HashRun } from "./hasher.ts";
import { DEFAULT_CHECKPOINT_INTERVAL, type HashJobResult } from "./job.ts";
import type { ReaderStart } from "./reader.worker.ts";
import type { StageEvent } from "../staging/opfs.ts";

export type WorkerRequest = { type: "hash"; key: string; file: Blob; reader: MessagePort; checkpointInterval?: number; rate?: number } | { type: "pause" };

export type WorkerResponse =
  | { type: "start"; resumedAt: number | undefined }
  | { type: "progress"; offset: number; bytesRead: number }
  | { type: "stage"; event: StageEvent }
  | { type: "result"; result: HashJobResult }
  | { type: "error"; name: string; message: string };

interface Workers {
  worker: Worker;
  reader: Worker;
  failed: boolean;
}

/** A hasher worker and its reader (reader.ts), started together so both load at once. */
function spawn(): Workers {
  const w: Workers = {
    worker: new Worker(new URL("./hasher.worker.ts", import.meta.url), { type: "module", name: "edge-upload-hasher" }),
    reader: new Worker(new URL("./reader.worker.ts", import.meta.url), { type: "module", name: "edge-upload-reader" }),
    failed: false,
  };
  w.worker.onerror = w.reader.onerror = () => void (w.failed = true);
  return w;
}

/**
 * One idle pair per page, started ahead: loading the workers' scripts takes ~100-150 ms under
 * `vite dev` (less bundled), which a dropped file would otherwise wait for (bench item 1).
 */
let spare: Workers | undefined;
const takeSpare = (): Workers => {
  if (spare?.failed) {
    spare.worker.terminate();
    spare.reader.terminate();
  }
  const w = spare && !spare.failed ? spare : spawn();
  spare = undefined;
  return w;
};

export function createWorkerHasher(): Hasher {
  const checkpoints = createIdbCheckpointStore();
  spare ??= spawn();
  return {
    start(input): HashRun {
      const { worker, reader } = takeSpare();
      const channel = new MessageChannel();
      // The copy is committed at the hasher's save step (half its checkpoint interval): never behind a checkpoint.
      const step = Math.max(1, Math.floor((input.checkpointInterval ?? DEFAULT_CHECKPOINT_INTERVAL) / 2));
      const start: ReaderStart = { file: input.file, port: channel.port2, ...(input.stage ? { stage: { key: input.key, step } } : {}) };
      reader.postMessage(start, [channel.port2]);
      const stop = () => {
        worker.terminate();
        reader.terminate();
        spare ??= spawn();
      };
      const result = new Promise<HashJobResult>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<WorkerResponse>) => {
          const msg = event.data;
          if (msg.type === "start") input.onStart?.(msg.resumedAt);
          else if (msg.type === "progress") input.onProgress?.(msg.offset, msg.bytesRead);
          else if (msg.type === "stage") input.onStage?.(msg.event);
          else {
            stop();
            if (msg.type === "result") resolve(msg.result);
            else reject(Object.assign(new Error(msg.message), { name: msg.name }));
          }
        };
        worker.onerror = reader.onerror = (event) => {
          stop();
          reject(new Error(`hasher worker failed: ${event.message}`));
        };
      });
      const request: WorkerRequest = {
        type: "hash",
        key: input.key,
        file: input.file,
        reader: channel.port1,
        checkpointInterval: input.checkpointInterval,
        rate: input.rate,
      };
      worker.postMessage(request, [channel.port1]);
      return { result, pause: () => worker.postMessage({ type: "pause" } satisfies WorkerRequest) };
    },
    peek: async (key, size) => checkCheckpoint(await checkpoints.get(key), size),
    forget: (key) => checkpoints.delete(key),
  };
}
