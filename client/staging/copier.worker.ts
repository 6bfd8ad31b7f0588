/**
 * The copier: a Web Worker of its own per staged hash (copier.ts does the work), started by
 * worker-hasher.ts beside the hasher and its reader, and kept running after the hash has ended
 * until the copy is whole.
 */
import { type CopyJob, runCopier } from "./copier.ts";
import { type StageEvent, syncHandlesWork } from "./opfs.ts";

/** The one message the copier gets: what to copy, the port its hasher sends its progress and hashed buffers on, and the one it returns buffers to the reader on. */
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

// Started ahead of its file (worker-hasher.ts keeps one spare): whether sync access handles work is asked now, not while the hash runs.
void syncHandlesWork();

self.onmessage = (event) => {
  const { hasher, reader, ...job } = event.data;
  void runCopier(job, hasher, {
    reader,
    report: (stage) => self.postMessage({ type: "stage", event: stage }),
    settled: () => self.postMessage({ type: "settled" }),
  });
};
