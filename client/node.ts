/**
 * The library in Node: the same uploader core with a file-backed store (JSON files in a
 * directory) and hashing in-process: node:crypto by default (client/hashing/native.ts), or
 * hash-wasm checkpointed beside the records.
 */
import { readRange } from "./disk-file.ts";
import { createFileCheckpointStore, createFileStore, defaultStateDir } from "./persist/files.ts";
import { createInProcessHasher } from "./hashing/hasher.ts";
import { createNativeHasher } from "./hashing/native.ts";
import { NODE_MAX_ATTEMPTS } from "./retry.ts";
import type { UploaderOptions } from "./types.ts";
import { createUploaderCore, type Uploader } from "./uploader.ts";

export interface NodeUploaderOptions extends UploaderOptions {
  /** Where records and hasher checkpoints live. Default ~/.cache/edge-upload. */
  stateDir?: string;
  /**
   * "native" (default): node:crypto, ~5x faster, restarts from byte 0 when stopped mid-hash.
   * "resumable": hash-wasm with checkpoints in `stateDir`, as in browsers: a stopped hash resumes
   * where it stopped. See client/hashing/native.ts for when each costs less.
   */
  hashing?: "native" | "resumable";
}

export function createNodeUploader(options: NodeUploaderOptions): Uploader {
  const dir = options.stateDir ?? defaultStateDir();
  return createUploaderCore(options, {
    store: createFileStore(dir),
    hasher: options.hashing === "resumable" ? createInProcessHasher(createFileCheckpointStore(dir)) : createNativeHasher(),
    // tus-js-client's Node http stack pipes a Readable to the socket and reads `size` for
    // Content-Length. A stream, not the chunk read into a Buffer first: the PATCH starts at once
    // instead of after a 32 MiB read, and no chunk-sized buffer is held. Read with fs streams
    // in 1 MiB pieces (client/disk-file.ts), not the Blob's 64 KiB web stream.
    toBody: async (file, start, end) => Object.assign(await readRange(file, start, end), { size: end - start }),
    // A process nobody watches must end with a message rather than wait forever: a few minutes
    // of backoff, then it fails with what went wrong, and running it again continues.
    defaultMaxAttempts: NODE_MAX_ATTEMPTS,
  });
}

export { fileFromPath, FileChangedError } from "./disk-file.ts";
export { createFileStore, createFileCheckpointStore, defaultStateDir } from "./persist/files.ts";
export type { Uploader } from "./uploader.ts";
export type * from "./types.ts";
