/**
 * The finish of an upload (layerWriter.Finish's validate and move; ./writer.ts links and
 * removes afterwards): the digest from the hasher state (no re-read) or, without a usable state,
 * from the assembled data read back with bounded retries; then the data at its blob path, by
 * completing the multipart upload that already targets it (digest declared before the last
 * byte), or by moving it there (server-side copy when the store has one, else streamed).
 */
import { formatDigest, type Sha256Digest } from "../../shared/digest.ts";
import type { ResumableSha256 } from "../../shared/sha256.ts";
import { blobDataPath, uploadDataPath } from "../registry/paths.ts";
import { statBlob } from "../registry/blobs.ts";
import { MultipartUnknownError, PathNotFoundError, type MultipartUpload, type UploadedPart } from "../storage/driver.ts";
import { streamCopy } from "./copy.ts";
import { DigestMismatchError, HashStateUnavailableError, UploadDataUnavailableError } from "./errors.ts";
import type { HasherFactory } from "./hashers.ts";
import { completeOnce, sizeIs } from "./multipart.ts";
import type { RetryPolicy, StoredUpload } from "./record.ts";
import { settled } from "./settled.ts";

/**
 * What the finish works on: the upload's committed state (which it may rewrite, and removes on a
 * mismatch), the writer's hasher at the committed offset (undefined when its state was lost), and
 * how to hash and retry when it must re-read the data.
 */
export interface FinishInput {
  readonly upload: StoredUpload;
  readonly hasher: ResumableSha256 | undefined;
  readonly createHasher: HasherFactory;
  readonly retry: RetryPolicy;
}

/**
 * Validates the finished upload against `digest` and the declared one (both must match when both
 * are given; else the computed digest is used) and puts the data at its blob path; returns the
 * blob's digest. A mismatch throws DigestMismatchError after removing the upload.
 */
export async function validateAndMove(s: FinishInput, digest?: Sha256Digest): Promise<Sha256Digest> {
  const expected = [...new Set([digest, s.upload.info.declaredDigest].filter((d): d is Sha256Digest => d !== undefined))];
  // The digest from the resumed hasher state, without reading a byte back. A copy is finalised
  // so that a finish that fails on storage can be retried with the state intact.
  const computed = s.hasher ? formatDigest((await s.createHasher(s.hasher.save())).digest()) : undefined;
  if (computed) await rejectMismatch(s, expected, computed);
  return s.upload.info.layout === "tail" ? await finishSmall(s, expected, computed) : await finishMultipart(s, expected, computed);
}

/** The whole upload is the tail (at most one part): put it at its blob path unless present. */
async function finishSmall(s: FinishInput, expected: Sha256Digest[], computed: Sha256Digest | undefined): Promise<Sha256Digest> {
  // Without a hasher state, the re-read is the tail we already loaded from storage.
  const digest = computed ?? formatDigest(await hashOnce(s, s.upload.tail));
  if (!computed) await rejectMismatch(s, expected, digest);
  if (!(await statBlob(s.upload.driver, digest))) {
    // The store checks the SHA-256 too, so a corrupted transfer cannot land at the blob path.
    await s.upload.driver.put(blobDataPath(digest), s.upload.tail, { sha256: digest.slice(7) });
  }
  await validateStored(s, blobDataPath(digest));
  return digest;
}

async function finishMultipart(s: FinishInput, expected: Sha256Digest[], computed: Sha256Digest | undefined): Promise<Sha256Digest> {
  const { upload } = s;
  const info = upload.info;
  if (info.layout === "tail" || info.layout === "moving") throw new Error(`upload ${info.id}: no multipart upload to finish (${info.layout})`);
  const multipart = upload.driver.resumeMultipart(info.multipart.key, info.multipart.uploadId);

  if (info.layout === "at-blob") {
    // The multipart upload targets the blob path: complete it only once the hasher has
    // verified the digest (done by the caller). Re-reading first is impossible (parts of an
    // incomplete upload cannot be read), so without a state this upload cannot be finished.
    if (!computed) throw new HashStateUnavailableError(info.id);
    if (await statBlob(upload.driver, info.declaredDigest)) {
      await multipart.abort(); // content-addressed: the blob is already there
    } else {
      await complete(s, multipart);
    }
    await validateStored(s, blobDataPath(info.declaredDigest));
    return info.declaredDigest;
  }

  const dataKey = uploadDataPath(info.namespace, info.id);
  if (info.layout === "staged") await complete(s, multipart);
  // Recording "assembled", checking the assembled object's size and looking for the blob are
  // independent round trips: with the digest from the hasher they run together, and every one
  // must succeed before the blob is written. Without it the re-read may end in a mismatch, which
  // removes the upload: that must not race the record's rewrite, so it waits for it.
  const record = info.layout === "staged" ? upload.save({ ...info, layout: "assembled" }) : undefined;
  if (!computed) await record;
  const present = computed ? statBlob(upload.driver, computed) : undefined;
  const [digest] = await settled([validateStored(s, dataKey, computed === undefined ? expected : undefined), record, present] as const);
  const final = computed ?? digest;
  if (!final) throw new HashStateUnavailableError(info.id);
  if (!computed) await rejectMismatch(s, expected, final);
  const blobKey = blobDataPath(final);
  if (!(await (present ?? statBlob(upload.driver, final)))) {
    if (upload.driver.copy) await upload.driver.copy(dataKey, blobKey);
    else await streamCopy(upload.driver, dataKey, blobKey, info.length, info.partSize);
  }
  return final;
}

/** Completes the multipart upload with the committed parts plus the tail as the last part. */
async function complete(s: FinishInput, upload: MultipartUpload): Promise<void> {
  const { driver, etags, tail, info } = s.upload;
  const parts: UploadedPart[] = etags.map((etag, i) => ({ partNumber: i + 1, etag }));
  if (tail.length > 0) {
    try {
      parts.push(await upload.uploadPart(parts.length + 1, tail));
    } catch (err) {
      // An earlier finish completed the upload and died before recording it: the tail has no
      // upload to go to, and the data is whole at its key already.
      if (err instanceof MultipartUnknownError && (await sizeIs(driver, upload.key, info.length))) return;
      throw err;
    }
  }
  await completeOnce(driver, upload, parts, info.length);
}

/**
 * distribution's validateLayer, retried for stores that are only eventually consistent: the stored object must be visible with
 * the upload's length; when `rehashFor` is given (no hasher state), its bytes are read and hashed,
 * and a digest that matches none of `rehashFor` is retried too (a stale read), then returned.
 * Attempt n (from 0) is followed by a wait of retryDelayMs * 2^n.
 */
async function validateStored(s: FinishInput, key: string, rehashFor?: Sha256Digest[]): Promise<Sha256Digest | undefined> {
  const {
    driver,
    info: { length },
  } = s.upload;
  const { retries, delayMs, sleep } = s.retry;
  let reason = "";
  let digest: Sha256Digest | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(delayMs * 2 ** (attempt - 1));
    try {
      const stat = await driver.stat(key);
      if (stat.size !== length) {
        reason = `size ${stat.size}, expected ${length}`;
        continue;
      }
      if (!rehashFor) return undefined;
      const got = await driver.get(key);
      digest = await hashStream(s, got.body);
      if (rehashFor.length === 0 || rehashFor.includes(digest)) return digest;
      reason = `digest ${digest} matches no expected digest`;
    } catch (err) {
      if (!(err instanceof PathNotFoundError)) throw err;
      reason = "not found";
    }
  }
  // Stale reads exhausted: a consistent wrong digest is a mismatch, anything else unavailable.
  if (digest && rehashFor && rehashFor[0]) throw await mismatch(s, rehashFor[0], digest);
  throw new UploadDataUnavailableError(key, retries + 1, reason);
}

async function hashOnce(s: FinishInput, bytes: Uint8Array): Promise<Uint8Array> {
  const h = await s.createHasher();
  h.update(bytes);
  return h.digest();
}

async function hashStream(s: FinishInput, body: ReadableStream<Uint8Array>): Promise<Sha256Digest> {
  const h = await s.createHasher();
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    h.update(value);
  }
  return formatDigest(h.digest());
}

/** Throws DigestMismatchError (after removing the upload, per the HTTP contract) unless every expected digest is `actual`. */
async function rejectMismatch(s: FinishInput, expected: Sha256Digest[], actual: Sha256Digest): Promise<void> {
  const wrong = expected.find((e) => e !== actual);
  if (wrong) throw await mismatch(s, wrong, actual);
}

async function mismatch(s: FinishInput, expected: Sha256Digest, actual: Sha256Digest): Promise<DigestMismatchError> {
  await s.upload.discard();
  return new DigestMismatchError(expected, actual);
}
