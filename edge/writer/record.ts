/**
 * The upload record (`_uploads/<id>/info`) shared by the writer's parts (edge/writer.ts,
 * edge/writer-finish.ts), and small storage helpers they both use.
 */
import type { Sha256Digest } from "../shared/digest.ts";
import { MultipartUnknownError, PathNotFoundError, type MultipartUpload, type StorageDriver, type UploadedPart } from "./storage/driver.ts";

/** The upload record stored at `_uploads/<id>/info`; writing it is the commit. */
export interface UploadInfo {
  version: 1;
  namespace: string;
  id: string;
  length: number;
  declaredDigest?: Sha256Digest;
  startedAt: string;
  lastWriteAt: string;
  partSize: number;
  /** Committed bytes. */
  offset: number;
  /** Absent when the whole upload fits one part: it then lives in the tail until finish. */
  multipart?: { key: string; uploadId: string };
  /** Set once the multipart upload under the upload prefix was completed (a finish retried after a crash). */
  assembled?: true;
  /**
   * The multipart upload under the upload prefix that `parts` full parts are being moved from, to
   * `multipart` at the blob path (declareDigest); cleared once the copies are committed.
   */
  moveFrom?: { key: string; uploadId: string; parts: number };
}

/** Etags per `parts/<group>` object: bounded objects instead of one record growing to 10,000 etags. */
export const ETAGS_PER_GROUP = 1000;

/**
 * Completes `upload` with `parts`. An upload id that is gone while its key holds `size` bytes
 * was completed by an earlier attempt that crashed before recording it: the data is there.
 */
export async function completeOnce(driver: StorageDriver, upload: MultipartUpload, parts: UploadedPart[], size: number): Promise<void> {
  try {
    await upload.complete(parts);
  } catch (err) {
    if (!(err instanceof MultipartUnknownError && (await sizeIs(driver, upload.key, size)))) throw err;
  }
}

/** Whether `key` holds an object of `size` bytes (false when absent). */
export async function sizeIs(driver: StorageDriver, key: string, size: number): Promise<boolean> {
  try {
    return (await driver.stat(key)).size === size;
  } catch (err) {
    if (err instanceof PathNotFoundError) return false;
    throw err;
  }
}
