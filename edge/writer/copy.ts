/**
 * Copies through this worker, for stores without a server-side copy (the R2 binding has none).
 * Both the finish's move (./finish.ts) and the move of the parts stored before a digest was
 * declared mid-upload use one ranged GET per part streamed into `uploadPart`: memory stays at
 * about one part, and objects above 5 GiB (a single PUT's limit) work.
 */
import type { MultipartUpload, StorageDriver, UploadedPart } from "../storage/driver.ts";

/**
 * Bytes [0, size) of the object `from` as parts 1..n of `partSize` (the last may be shorter) of
 * `to`. Uploading a part number again replaces it, so a copy cut short can simply be run again.
 */
export async function copyParts(driver: StorageDriver, from: string, to: MultipartUpload, size: number, partSize: number): Promise<UploadedPart[]> {
  const parts: UploadedPart[] = [];
  for (let offset = 0, n = 1; offset < size; offset += partSize, n++) {
    const length = Math.min(partSize, size - offset);
    const got = await driver.get(from, { range: { offset, length } });
    parts.push(await to.uploadPart(n, { stream: got.body, length }));
  }
  return parts;
}

/**
 * Copies the object `from` (`size` bytes) to `to`: one streamed PUT when it fits one part, else a
 * multipart upload. The destination becomes visible only when complete. Each part costs two
 * subrequests, so a very large blob is better uploaded with its digest declared before its last
 * byte, which needs no copy at finish.
 */
export async function streamCopy(driver: StorageDriver, from: string, to: string, size: number, partSize: number): Promise<void> {
  if (size <= partSize) {
    const got = await driver.get(from);
    await driver.put(to, { stream: got.body, length: size });
    return;
  }
  const upload = await driver.createMultipart(to);
  try {
    await upload.complete(await copyParts(driver, from, upload, size, partSize));
  } catch (err) {
    await abortUnrecorded(upload);
    throw err;
  }
}

/**
 * Aborts a multipart upload that nothing else records (its creation's record could not be
 * written, or a copy into it failed): a few attempts, never throwing, since the caller is already
 * reporting the error that brought it here. One still left open is removed by the store's own
 * expiry of incomplete uploads (R2: 7 days; S3: a lifecycle rule).
 */
export async function abortUnrecorded(upload: MultipartUpload, attempts = 3): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    try {
      await upload.abort();
      return;
    } catch {
      // tried again below; the driver has already retried transient faults itself
    }
  }
}
