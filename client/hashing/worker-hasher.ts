/**
 * The browser Hasher: per running hash a dedicated module Worker that hashes and one that reads
 * the file for it (both terminated when it ends), and main-thread access to the worker's
 * checkpoint database for peek/forget. With `stage`, a third worker copies the file into this
 * browser (staging/copier.ts) beside them: it writes the buffers the hasher has hashed, follows
 * the hasher's checkpoints (the hasher stores them), and outlives a finished hash until the copy
 * is whole (a pause, an error or forget() ends it).
 */
import { createIdbCheckpointStore } from "../persist/idb.ts";
import { checkCheckpoint } from "./checkpoint.ts";
import type { HashInput, Hasher, HashRun } from "./hasher.ts";
import { DEFAULT_CHECKPOINT_INTERVAL, type HashJobResult } from "./job.ts";
import type { ReaderStart } from "./reader.worker.ts";
import type { CopierResponse, CopierStart } from "../staging/copier.worker.ts";
import { type CopyPace, defaultCopyPace } from "../staging/copier.ts";

export type WorkerRequest =
  | {
      type: "hash";
      key: string;
      file: Blob;
      reader: MessagePort;
      /** To the copier: checkpoint offsets, and with `passBuffers` (the copy written alongside) the hashed buffers. */
      copier?: MessagePort;
      passBuffers?: boolean;
      checkpointInterval?: number;
      rate?: number;
    }
  | { type: "pause" };

export type WorkerResponse =
  | { type: "start"; resumedAt: number | undefined }
  | { type: "progress"; offset: number; bytesRead: number }
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

/** The copier of each key being copied; one at a time per key (the copy's file takes one writer). */
const copiers = new Map<string, Worker>();

function endCopier(key: string, copier?: Worker): void {
  const running = copiers.get(key);
  if (!running || (copier && running !== copier)) return;
  running.terminate();
  copiers.delete(key);
}

const spawnCopier = () => {
  const copier = { worker: new Worker(new URL("../staging/copier.worker.ts", import.meta.url), { type: "module", name: "edge-upload-copier" }), failed: false };
  copier.worker.onerror = () => void (copier.failed = true);
  return copier;
};

/**
 * With staging, an idle copier per page too, started ahead: one started on demand loaded while
 * the hash ran (~300 ms under `vite dev`, 64-100 MiB of hashing), and the hash had passed those
 * buffers back to the reader by then, so the copier read them again itself (bench item 1).
 */
let spareCopier: ReturnType<typeof spawnCopier> | undefined;

/** Starts the copier of `input` (terminating an older one of the key); returns the ports for the hasher (checkpoint offsets, hashed buffers) and the reader (buffers returned). */
function startCopier(input: HashInput, pace: CopyPace): { hasher: MessagePort; reader: MessagePort } {
  endCopier(input.key);
  const taken = spareCopier && !spareCopier.failed ? spareCopier : spawnCopier();
  if (spareCopier?.failed) spareCopier.worker.terminate();
  spareCopier = spawnCopier();
  const copier = taken.worker;
  copiers.set(input.key, copier);
  const channel = new MessageChannel();
  const returns = new MessageChannel(); // copier -> reader: the buffers it was passed, once written
  // Committed at the hasher's save step (half its checkpoint interval), as the checkpoints are.
  const step = Math.max(1, Math.floor((input.checkpointInterval ?? DEFAULT_CHECKPOINT_INTERVAL) / 2));
  copier.postMessage({ file: input.file, key: input.key, step, pace, hasher: channel.port2, reader: returns.port2 } satisfies CopierStart, [
    channel.port2,
    returns.port2,
  ]);
  copier.onmessage = (event: MessageEvent<CopierResponse>) => {
    if (event.data.type === "stage") input.onStage?.(event.data.event);
    else endCopier(input.key, copier);
  };
  copier.onerror = () => {
    endCopier(input.key, copier);
    input.onStage?.({ kind: "stopped", why: "unavailable" });
  };
  return { hasher: channel.port1, reader: returns.port1 };
}

/** `stage`: files will be copied into this browser as they are hashed (a copier is started ahead). */
export function createWorkerHasher(options: { stage?: boolean } = {}): Hasher {
  const checkpoints = createIdbCheckpointStore();
  const defaultPace = defaultCopyPace();
  spare ??= spawn();
  if (options.stage) spareCopier ??= spawnCopier();
  return {
    start(input): HashRun {
      const { worker, reader } = takeSpare();
      const channel = new MessageChannel();
      const pace = input.copyPace ?? defaultPace;
      const copierPorts = input.stage ? startCopier(input, pace) : undefined;
      const copierPort = copierPorts?.hasher;
      const readerStart: ReaderStart = { file: input.file, port: channel.port2, ...(copierPorts ? { returns: copierPorts.reader } : {}) };
      reader.postMessage(readerStart, copierPorts ? [channel.port2, copierPorts.reader] : [channel.port2]);
      const copier = copiers.get(input.key);
      const stop = (finished: boolean) => {
        worker.terminate();
        reader.terminate();
        spare ??= spawn();
        // A finished hash leaves the copier to finish the copy; a paused or failed one takes it along.
        if (!finished) endCopier(input.key, copier);
      };
      const result = new Promise<HashJobResult>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<WorkerResponse>) => {
          const msg = event.data;
          if (msg.type === "start") input.onStart?.(msg.resumedAt);
          else if (msg.type === "progress") input.onProgress?.(msg.offset, msg.bytesRead);
          else {
            stop(msg.type === "result" && msg.result.kind === "done");
            if (msg.type === "result") resolve(msg.result);
            else reject(Object.assign(new Error(msg.message), { name: msg.name }));
          }
        };
        worker.onerror = reader.onerror = (event) => {
          stop(false);
          reject(new Error(`hasher worker failed: ${event.message}`));
        };
      });
      const request: WorkerRequest = {
        type: "hash",
        key: input.key,
        file: input.file,
        reader: channel.port1,
        ...(copierPort ? { copier: copierPort, passBuffers: pace === "alongside" } : {}),
        checkpointInterval: input.checkpointInterval,
        rate: input.rate,
      };
      worker.postMessage(request, copierPort ? [channel.port1, copierPort] : [channel.port1]);
      return { result, pause: () => worker.postMessage({ type: "pause" } satisfies WorkerRequest) };
    },
    peek: async (key, size) => checkCheckpoint(await checkpoints.get(key), size),
    // The upload is done or cancelled: its copy is not wanted any more, nor its checkpoint.
    forget: async (key) => {
      endCopier(key);
      await checkpoints.delete(key);
    },
  };
}
