/**
 * Multipart steps that must survive a crash half-way: completing an upload that an earlier
 * attempt may already have completed, and moving the parts stored before a digest was declared to
 * the multipart upload at the blob path.
 */
import { MultipartUnknownError, PathNotFoundError, type MultipartUpload, type StorageDriver, type UploadedPart } from "../storage/driver.ts";
import { copyParts } from "./copy.ts";
import type { StoredUpload } from "./record.ts";

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

/**
 * Completes a move of stored parts to the blob path's multipart upload (a digest declared
 * mid-upload), also one a crash interrupted: assemble the moved parts under the upload (unless
 * done already), copy them into the new upload, commit their etags, delete the assembled object.
 * Does nothing unless the upload is `moving`.
 */
export async function settleMove(upload: StoredUpload): Promise<void> {
  const info = upload.info;
  if (info.layout !== "moving") return;
  const { driver } = upload;
  const { moveFrom: from, multipart: target, partSize } = info;
  const source = driver.resumeMultipart(from.key, from.uploadId);
  if (from.parts === 0) {
    await source.abort();
  } else {
    const size = from.parts * partSize;
    // After a crash past this point the etags may already be the copies': the upload id is gone then.
    await completeOnce(
      driver,
      source,
      upload.etags.slice(0, from.parts).map((etag, i) => ({ partNumber: i + 1, etag })),
      size,
    );
    const copied = await copyParts(driver, from.key, driver.resumeMultipart(target.key, target.uploadId), size, partSize);
    await upload.replaceEtags([...copied.map((p) => p.etag), ...upload.etags.slice(from.parts)]);
  }
  const { moveFrom: _, ...settled } = info;
  await upload.save({ ...settled, layout: "at-blob" });
  if (from.parts > 0) await driver.delete(from.key);
}
