/**
 * The driver over the S3 REST API, for AWS S3, R2's S3 endpoint, MinIO, Backblaze B2 and other
 * S3-compatible stores, from inside workerd. Requests are signed with aws4fetch (SigV4), sent and
 * retried by ./s3-request.ts; bodies are streamed with their length known (FixedLengthStream),
 * never buffered. This file assembles the operations: objects (./s3-objects.ts), multipart
 * uploads (./s3-multipart.ts), server-side copy (./s3-copy.ts).
 *
 * Where S3 is laxer than the interface (./driver.ts), the driver enforces the interface, so the
 * writer behaves the same on every store:
 * - CompleteMultipartUpload is preceded by ListParts, and R2's rules are checked on what the store
 *   holds: known parts with their current ETags, ascending, every part but the last of one size
 *   and at least 5 MiB (S3 itself allows unequal parts; R2's S3 endpoint does not);
 * - a `sha256` given to put is sent as the signed payload hash (x-amz-content-sha256), which every
 *   SigV4 store checks while receiving the body: a mismatch stores nothing (BadDigestError);
 * - `copy` is server-side: CopyObject up to 5 GiB (its limit), above that a multipart upload of
 *   UploadPartCopy ranges, so the move at finish sends no blob bytes through the worker.
 * No object tagging headers are sent (R2 rejects them; @tus/s3-store #538).
 */
import { withKeyValidation } from "./base.ts";
import type { StorageDriver } from "./driver.ts";
import type { RetryPolicy } from "./retry.ts";
import { copyObject, copySettings } from "./s3-copy.ts";
import { createMultipart, multipartUpload } from "./s3-multipart.ts";
import { deleteObjects, getObject, headObject, listObjects, putObject } from "./s3-objects.ts";
import { connectS3, NAME } from "./s3-request.ts";

export { S3BucketNotFoundError, S3CredentialsError, S3ResponseError } from "./s3-errors.ts";

export interface S3DriverOptions {
  /**
   * The store's endpoint, without the bucket: `https://s3.us-east-1.amazonaws.com`,
   * `https://<account id>.r2.cloudflarestorage.com`, `http://127.0.0.1:9000`.
   */
  endpoint: string;
  /** SigV4 region: the bucket's region on AWS, "auto" on R2, anything the server accepts locally. */
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials' session token (AWS STS). */
  sessionToken?: string;
  /**
   * Address the bucket as `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint host>/<key>`.
   * Default: true for an IP address or localhost (local servers), false otherwise.
   */
  forcePathStyle?: boolean;
  /** The fetch to send signed requests with (tests wrap it to count bytes). */
  fetch?: (request: Request) => Promise<Response>;
  /** Objects larger than this are copied part by part with UploadPartCopy (default and maximum 5 GiB). */
  multipartCopyThreshold?: number;
  /** Part size of such a copy (default 512 MiB, grown when 10,000 parts would not suffice). */
  copyPartSize?: number;
  /**
   * How transient faults (429, 5xx, SlowDown, InternalError, network errors, timeouts) are
   * retried, for requests whose body can be sent again (./retry.ts; default 6 attempts, full
   * jitter over windows of 200 ms doubling to 10 s, a Retry-After of up to 20 s honoured).
   * Once they are used up the call fails with StorageUnavailableError.
   */
  retry?: Partial<RetryPolicy>;
  /** @deprecated Attempts after the first; `retry.attempts` is the number of attempts in all. */
  retries?: number;
  /**
   * How long a request may go without answering before it counts as failed (and is retried when
   * its body can be sent again): default 30 s for the headers, and for calls answering XML
   * (listings, CopyObject, CompleteMultipartUpload...) for the body too; a hung store must not
   * hold the upload's queue forever. Requests carrying or copying bytes get longer (see
   * `timeoutBytesPerSecond`).
   */
  requestTimeoutMs?: number;
  /**
   * The slowest rate at which a body (sent, or copied by the store for CopyObject and
   * UploadPartCopy) still counts as moving: the timeout grows by its length at this rate
   * (default 1 MiB/s, so an 8 MiB part may take 30 + 8 s).
   */
  timeoutBytesPerSecond?: number;
}

/** A driver over one bucket of an S3-compatible store, behind the key-validating wrapper. */
export function createS3Driver(options: S3DriverOptions): StorageDriver {
  const s3 = connectS3(options);
  const copy = copySettings(options);
  return withKeyValidation({
    name: NAME,
    get: (key, opts) => getObject(s3, key, opts),
    put: (key, body, opts) => putObject(s3, key, body, opts),
    stat: (key) => headObject(s3, key),
    list: (prefix, opts) => listObjects(s3, prefix, opts),
    delete: (...keys) => deleteObjects(s3, keys),
    createMultipart: (key) => createMultipart(s3, key),
    resumeMultipart: (key, uploadId) => multipartUpload(s3, key, uploadId),
    copy: (from, to) => copyObject(s3, copy, from, to),
  });
}
