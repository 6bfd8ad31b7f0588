/**
 * The browser library: hash in a Web Worker, remember in IndexedDB, upload over tus.
 *
 *   const uploader = createUploader({ endpoint: "/files" });
 *   uploader.on((e) => render(e.upload));
 *   await uploader.restore();            // rows left by a previous session
 *   await uploader.add(input.files);     // File or FileSystemFileHandle
 *
 * Node: import from "client/node.ts" instead (file-backed store, in-process hashing).
 */
import { createIdbStore } from "./persist/idb.ts";
import type { UploadStore } from "./persist/records.ts";
import type { UploaderOptions } from "./types.ts";
import { createUploaderCore, type Uploader } from "./uploader.ts";
import { createWorkerHasher } from "./hashing/worker-hasher.ts";
import { createOpfsStaging, DEFAULT_STAGE_LIMIT } from "./staging/staging.ts";

export function createUploader(options: UploaderOptions & { store?: UploadStore }): Uploader {
  return createUploaderCore(options, {
    store: options.store ?? createIdbStore(),
    hasher: createWorkerHasher({ stage: options.staging !== false }),
    baseUrl: globalThis.location?.href,
    // A copy of each file in this browser while it is hashed, so a crash costs no file search.
    staging: options.staging === false ? "off" : createOpfsStaging(options.stageLimit ?? DEFAULT_STAGE_LIMIT),
  });
}

export type { Uploader } from "./uploader.ts";
export type { UploadRecord, UploadStore } from "./persist/records.ts";
export { createMemoryStore } from "./persist/records.ts";
export { createIdbStore } from "./persist/idb.ts";
export { fingerprint } from "./fingerprint.ts";
export type {
  Progress,
  SessionCounters,
  RetryOptions,
  RetryState,
  StagedState,
  UploadError,
  UploaderEvent,
  UploaderOptions,
  UploadSnapshot,
  UploadState,
  UploadStateKind,
} from "./types.ts";
export type { Sha256Digest } from "../shared/digest.ts";
