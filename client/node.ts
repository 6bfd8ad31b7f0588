/**
 * The library in Node: the same uploader core with a file-backed store (JSON files in a
 * directory) and hashing in-process, checkpointed beside the records.
 */
import { openAsBlob } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
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
    // tus-js-client's Node http stack pipes a Readable to the socket and reads `size` for
    // Content-Length. A stream, not the chunk read into a Buffer first: the PATCH starts at once
    // instead of after a 32 MiB read, no chunk-sized buffer is held, and the body goes out in
    // 64 KiB writes rather than tus-js-client's 16 KiB Buffer writes.
    toBody: async (slice) => Object.assign(Readable.fromWeb(slice.stream() as NodeReadableStream<Uint8Array>), { size: slice.size }),
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
