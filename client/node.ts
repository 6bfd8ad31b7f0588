/**
 * The library in Node: the same uploader core with a file-backed store (JSON files in a
 * directory) and hashing in-process, checkpointed beside the records.
 */
import { openAsBlob } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { createFileCheckpointStore, createFileStore, defaultStateDir } from "./file-store.ts";
import { createInProcessHasher } from "./hasher.ts";
import type { UploaderOptions } from "./types.ts";
import { createUploaderCore, type Uploader } from "./uploader.ts";

export interface NodeUploaderOptions extends UploaderOptions {
  /** Where records and hasher checkpoints live. Default ~/.cache/edge-upload. */
  stateDir?: string;
}

export function createNodeUploader(options: NodeUploaderOptions): Uploader {
  const dir = options.stateDir ?? defaultStateDir();
  return createUploaderCore(options, {
    store: createFileStore(dir),
    hasher: createInProcessHasher(createFileCheckpointStore(dir)),
    // tus-js-client's Node http stack sends bytes; it reads `size` for Content-Length.
    toBody: async (slice) => Object.assign(Buffer.from(await slice.arrayBuffer()), { size: slice.size }),
  });
}

/**
 * A File backed by the file on disk (read lazily, slice by slice). If the file changes on disk
 * afterwards, reading it fails instead of mixing old and new bytes.
 */
export async function fileFromPath(path: string, type = ""): Promise<File> {
  const info = await stat(path);
  if (!info.isFile()) throw new Error(`${path} is not a regular file`);
  const blob = await openAsBlob(path, { type });
  return new File([blob], basename(path), { type, lastModified: Math.floor(info.mtimeMs) });
}

export { createFileStore, createFileCheckpointStore, defaultStateDir } from "./file-store.ts";
export type { Uploader } from "./uploader.ts";
export type * from "./types.ts";
