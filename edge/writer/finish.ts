/**
 * The finish of an upload (layerWriter.Finish's validate and move; edge/writer.ts links and
 * removes afterwards): the digest from the hasher state (no re-read) or, without a usable state,
 * from the assembled data read back with bounded retries; then the data at its blob path, by
 * completing the multipart upload that already targets it (digest declared before the last
 * byte), or by moving it there (server-side copy when the store has one, else streamed).
 */
import { formatDigest, type Sha256Digest } from "../shared/digest.ts";
import type { ResumableSha256 } from "../shared/sha256.ts";
import { blobDataPath, uploadDataPath } from "./registry/paths.ts";
import { statBlob } from "./registry/blobs.ts";
import { MultipartUnknownError, PathNotFoundError, type MultipartUpload, type StorageDriver, type UploadedPart } from "./storage/driver.ts";
import { streamCopy } from "./writer-copy.ts";
import { DigestMismatchError, HashStateUnavailableError, UploadDataUnavailableError } from "./writer-errors.ts";
import type { HasherFactory } from "./writer-hashers.ts";
import { completeOnce, sizeIs, type UploadInfo } from "./writer-record.ts";

/** What the finish needs from the writer: its committed state, its storage and its retry policy. */
export interface FinishState {
  readonly driver: StorageDriver;
  /** Read live: the finish records the assembled upload (saveInfo). */
  readonly info: UploadInfo;
  /** Etags of the committed parts, part n at index n-1. */
  readonly etags: readonly string[];
  readonly tail: Uint8Array;
  /** At the committed offset; undefined when its state was lost. */
  readonly hasher: ResumableSha256 | undefined;
  readonly createHasher: HasherFactory;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  saveInfo(info: UploadInfo): Promise<void>;
  /** Aborts and removes the upload (a digest mismatch leaves nothing behind). */
  cancel(): Promise<void>;
}

/**
 * Validates the finished upload against `digest` and the declared one (both must match when both
 * are given; else the computed digest is used) and puts the data at its blob path; returns the
 * blob's digest. A mismatch throws DigestMismatchError after removing the upload.
 */
export async function validateAndMove(s: FinishState, digest?: Sha256Digest): Promise<Sha256Digest> {
  const expected = [...new Set([digest, s.info.declaredDigest].filter((d): d is Sha256Digest => d !== undefined))];
  // The digest from the resumed hasher state, without reading a byte back. A copy is finalised
  // so that a finish that fails on storage can be retried with the state intact.
  const computed = s.hasher ? formatDigest((await s.createHasher(s.hasher.save())).digest()) : undefined;
  if (computed) await rejectMismatch(s, expected, computed);
  return s.info.multipart ? await finishMultipart(s, expected, computed) : await finishSmall(s, expected, computed);
}

/** The whole upload is the tail (at most one part): put it at its blob path unless present. */
async function finishSmall(s: FinishState, expected: Sha256Digest[], computed: Sha256Digest | undefined): Promise<Sha256Digest> {
  // Without a hasher state, the re-read is the tail we already loaded from storage.
  const digest = computed ?? formatDigest(await hashOnce(s, s.tail));
  if (!computed) await rejectMismatch(s, expected, digest);
  if (!(await statBlob(s.driver, digest))) {
    // The store checks the SHA-256 too, so a corrupted transfer cannot land at the blob path.
    await s.driver.put(blobDataPath(digest), s.tail, { sha256: digest.slice(7) });
  }
  await validateStored(s, blobDataPath(digest));
  return digest;
}

async function finishMultipart(s: FinishState, expected: Sha256Digest[], computed: Sha256Digest | undefined): Promise<Sha256Digest> {
  const mp = s.info.multipart as { key: string; uploadId: string };
  const upload = s.driver.resumeMultipart(mp.key, mp.uploadId);
  const declared = s.info.declaredDigest;

  if (declared !== undefined) {
    // The multipart upload targets the blob path: complete it only once the hasher has
    // verified the digest (done by the caller). Re-reading first is impossible (parts of an
    // incomplete upload cannot be read), so without a state this upload cannot be finished.
    if (!computed) throw new HashStateUnavailableError(s.info.id);
    if (await statBlob(s.driver, declared)) {
      await upload.abort(); // content-addressed: the blob is already there
    } else {
      await complete(s, upload);
    }
    await validateStored(s, blobDataPath(declared));
    return declared;
  }

  const dataKey = uploadDataPath(s.info.namespace, s.info.id);
  if (!s.info.assembled) {
    await complete(s, upload);
    await s.saveInfo({ ...s.info, assembled: true });
  }
  const digest = await validateStored(s, dataKey, computed === undefined ? expected : undefined);
  const final = computed ?? digest;
  if (!final) throw new HashStateUnavailableError(s.info.id);
  if (!computed) await rejectMismatch(s, expected, final);
  const blobKey = blobDataPath(final);
  if (!(await statBlob(s.driver, final))) {
    if (s.driver.copy) await s.driver.copy(dataKey, blobKey);
    else await streamCopy(s.driver, dataKey, blobKey, s.info.length, s.info.partSize);
  }
  return final;
}

/** Completes the multipart upload with the committed parts plus the tail as the last part. */
async function complete(s: FinishState, upload: MultipartUpload): Promise<void> {
  const parts: UploadedPart[] = s.etags.map((etag, i) => ({ partNumber: i + 1, etag }));
  if (s.tail.length > 0) {
    try {
      parts.push(await upload.uploadPart(parts.length + 1, s.tail));
    } catch (err) {
      // An earlier finish completed the upload and died before recording it: the tail has no
      // upload to go to, and the data is whole at its key already.
      if (err instanceof MultipartUnknownError && (await sizeIs(s.driver, upload.key, s.info.length))) return;
      throw err;
    }
  }
  await completeOnce(s.driver, upload, parts, s.info.length);
}

/**
 * distribution's validateLayer, with the seed's retries: the stored object must be visible with
 * the upload's length; when `rehashFor` is given (no hasher state), its bytes are read and hashed,
 * and a digest that matches none of `rehashFor` is retried too (a stale read), then returned.
 * Attempt n (from 0) is followed by a wait of retryDelayMs * 2^n.
 */
async function validateStored(s: FinishState, key: string, rehashFor?: Sha256Digest[]): Promise<Sha256Digest | undefined> {
  let reason = "";
  let digest: Sha256Digest | undefined;
  for (let attempt = 0; attempt <= s.retries; attempt++) {
    if (attempt > 0) await s.sleep(s.retryDelayMs * 2 ** (attempt - 1));
    try {
      const info = await s.driver.stat(key);
      if (info.size !== s.info.length) {
        reason = `size ${info.size}, expected ${s.info.length}`;
        continue;
      }
      if (!rehashFor) return undefined;
      const got = await s.driver.get(key);
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
  throw new UploadDataUnavailableError(key, s.retries + 1, reason);
}

async function hashOnce(s: FinishState, bytes: Uint8Array): Promise<Uint8Array> {
  const h = await s.createHasher();
  h.update(bytes);
  return h.digest();
}

async function hashStream(s: FinishState, body: ReadableStream<Uint8Array>): Promise<Sha256Digest> {
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
async function rejectMismatch(s: FinishState, expected: Sha256Digest[], actual: Sha256Digest): Promise<void> {
  const wrong = expected.find((e) => e !== actual);
  if (wrong) throw await mismatch(s, wrong, actual);
}

async function mismatch(s: FinishState, expected: Sha256Digest, actual: Sha256Digest): Promise<DigestMismatchError> {
  await s.cancel();
  return new DigestMismatchError(expected, actual);
}
