/**
 * The copier: a Web Worker of its own per staged hash (copier.ts does the work), started by
 * worker-hasher.ts beside the hasher and its reader, and kept running after the hash has ended
 * until the copy is whole. Its checkpoint writes go to the hasher's IndexedDB database.
 */
import { createIdbCheckpointStore } from "../persist/idb.ts";
import { type CopyJob, runCopier } from "./copier.ts";
import type { StageEvent } from "./opfs.ts";

/** The one message the copier gets: what to copy, the port its hasher sends checkpoints on, and the one its reader shares bytes on. */
export interface CopierStart extends CopyJob {
  hasher: MessagePort;
  reader: MessagePort;
}

/** What the copier tells the page: the copy's progress, then that it has nothing left to do. */
export type CopierResponse = { type: "stage"; event: StageEvent } | { type: "settled" };

declare const self: {
  onmessage: ((event: MessageEvent<CopierStart>) => void) | null;
  postMessage(message: CopierResponse): void;
};

self.onmessage = (event) => {
  const { hasher, reader, ...job } = event.data;
  void runCopier(job, hasher, {
    reader,
    checkpoints: createIdbCheckpointStore(),
    report: (stage) => self.postMessage({ type: "stage", event: stage }),
    settled: () => self.postMessage({ type: "settled" }),
  });
};
