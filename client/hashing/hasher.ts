/**
 * Hashing as a resumable process the upload drives: start, pause (checkpoint saved), result.
 * Two implementations of one interface: a Web Worker per running hash in browsers
 * (worker-hasher.ts; the main thread never hashes) and in-process in Node (here).
 */
import type { CopyPace } from "../staging/copier.ts";
import type { StageEvent } from "../staging/opfs.ts";
import { type CheckpointStore, checkCheckpoint } from "./checkpoint.ts";
import { type HashJobResult, runHashJob } from "./job.ts";

export interface HashInput {
  key: string;
  file: Blob;
  checkpointInterval?: number;
  /** Bytes per second at most. */
  rate?: number;
  onStart?(resumedAt: number | undefined): void;
  onProgress?(offset: number, bytesRead: number): void;
  /**
   * Browsers: keep a copy of the file in this browser (staging/), written by a worker beside the
   * hash, alongside it or after it (`copyPace`; by default by the machine's cores, copier.ts).
   * Hashers without it (Node) ignore it and never call onStage.
   */
  stage?: boolean;
  copyPace?: CopyPace;
  /** What became of the copy; it may end after the result (a copy slower than the hash). */
  onStage?(event: StageEvent): void;
}

export interface HashRun {
  result: Promise<HashJobResult>;
  /** Stops at the next slice; `result` then resolves "paused" after the checkpoint is saved. */
  pause(): void;
}

export interface Hasher {
  start(input: HashInput): HashRun;
  /** Where a usable checkpoint stands for this file (to show an interrupted row's progress). */
  peek(key: string, size: number): Promise<{ offset: number; digest?: string } | undefined>;
  /** Drops the checkpoint (upload done or cancelled). */
  forget(key: string): Promise<void>;
}

/** Node (and unit tests): the same loop in-process, awaiting between slices. */
export function createInProcessHasher(checkpoints: CheckpointStore): Hasher {
  return {
    start(input) {
      const controller = new AbortController();
      const result = runHashJob({
        key: input.key,
        size: input.file.size,
        read: async (start, end) => new Uint8Array(await input.file.slice(start, end).arrayBuffer()),
        stream: (start) => input.file.slice(start).stream(),
        checkpoints,
        checkpointInterval: input.checkpointInterval,
        signal: controller.signal,
        rate: input.rate,
        onStart: input.onStart,
        onProgress: input.onProgress,
      });
      return { result, pause: () => controller.abort() };
    },
    peek: async (key, size) => checkCheckpoint(await checkpoints.get(key), size),
    forget: (key) => checkpoints.delete(key),
  };
}
