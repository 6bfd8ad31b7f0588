/**
 * The upload writer: Docker distribution's layerWriter (registry/storage/layerwriter.go) on an
 * object store with R2's multipart rules. Pure logic over a StorageDriver; no HTTP here. The public
 * types are in ./index.ts.
 *
 * Data flow. Bytes are cut into parts of one fixed size (every part but the last has the same
 * size, R2 error 10048). Bytes that do not fill a part stay in a pending tail, stored under the
 * upload, and are the start of the next part; so any sequence of write sizes is accepted and a
 * short non-final part is never sent (distribution #3873, tusd #1137). The body is streamed
 * through two part-sized buffers, one being received and hashed while the other's part is stored
 * (./pipeline.ts): memory stays near two parts whatever the write sizes.
 *
 * Commits (./record.ts). `info` (UploadInfo) is the commit point, written after everything the new
 * offset needs. Commits happen strictly in part order, each with the hasher state saved when its
 * offset was reached. A crash at any step leaves `info` naming a complete, consistent set;
 * uncommitted parts are simply uploaded again under the same part number.
 *
 * Finish (validate -> move -> link -> remove, as layerWriter.Finish; the first two in ./finish.ts,
 * copies in ./copy.ts):
 * - validate with the hasher state (no re-read); when no state is usable, re-read and hash the
 *   assembled data; either way with bounded retries and backoff for stores that are only
 *   eventually consistent (R2 is strongly consistent; some S3 stores are not);
 * - when the digest was declared before the last byte, the multipart upload targets the blob path
 *   and is completed only after the hasher confirmed the digest: no copy, and nothing unverified
 *   ever reaches a blob path; otherwise it completes under the upload and is moved, by the store's
 *   server-side copy when it has one, else by streaming ranges into a multipart upload at the blob
 *   path (the R2 binding has no copy);
 * - a blob already present is not written again (content addressing), only linked.
 *
 * A digest declared mid-upload (declareDigest: a client that hashes while it uploads) switches the
 * upload to a multipart upload at the blob path; the parts stored until then are assembled under
 * the upload and copied over once, at that moment. A client that hashes faster than it uploads
 * declares early, so that copy is a small share of the data, and the finish copies nothing. `info`
 * is `moving` (./multipart.ts settleMove) until the copy is committed: a crash half-way is
 * completed by the next write, finish or declare.
 */
import type { Sha256Digest } from "../../shared/digest.ts";
import { DEFAULTS } from "../../shared/protocol.ts";
import type { ResumableSha256 } from "../../shared/sha256.ts";
import { linkBlob } from "../registry/blobs.ts";
import { blobDataPath, validateNamespace, validateUploadId } from "../registry/paths.ts";
import { MULTIPART_LIMITS, type StorageDriver, type UploadedPart } from "../storage/driver.ts";
import { bodyChunks } from "./body-chunks.ts";
import { defaultChecksumFactory, type ChecksumFactory } from "./checksum.ts";
import {
  BodyTooLargeError,
  ChecksumMismatchError,
  DigestConflictError,
  HashStateUnavailableError,
  UploadIncompleteError,
  UploadTooLargeError,
  WriterClosedError,
} from "./errors.ts";
import { validateAndMove } from "./finish.ts";
import { defaultHasherFactory, loadHasher, type HasherFactory } from "./hashers.ts";
import type { FinishHooks, ResumeOptions, UploadWriter, WriteBody, WriteOptions, WriterOptions } from "./index.ts";
import { settleMove } from "./multipart.ts";
import { PartPipeline } from "./pipeline.ts";
import { committedReader, StoredUpload, type RetryPolicy } from "./record.ts";

const DEFAULT_RETRIES = 5;
const DEFAULT_RETRY_DELAY_MS = 100;

/** Creates an upload in storage (startedat, multipart upload when needed, info) and a writer for it. */
export async function createUploadWriter(
  driver: StorageDriver,
  init: { namespace: string; id: string; length: number; declaredDigest?: Sha256Digest },
  opts: WriterOptions = {},
): Promise<UploadWriter> {
  const { namespace, id, length } = init;
  validateNamespace(namespace);
  validateUploadId(id);
  const partSize = opts.partSize ?? DEFAULTS.partSize;
  if (!Number.isSafeInteger(partSize) || partSize < MULTIPART_LIMITS.minPartSize || partSize > MULTIPART_LIMITS.maxPartSize) {
    throw new RangeError(`partSize must be an integer from ${MULTIPART_LIMITS.minPartSize} to ${MULTIPART_LIMITS.maxPartSize}`);
  }
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer, got ${length}`);
  const max = partSize * MULTIPART_LIMITS.maxParts;
  if (length > max) throw new UploadTooLargeError(length, max);
  if (init.declaredDigest !== undefined) blobDataPath(init.declaredDigest); // validates the digest

  const now = (opts.now ?? (() => new Date()))();
  const upload = await StoredUpload.create(driver, { ...init, partSize, now }, committedReader(driver, retryPolicy(opts)));
  const createHasher = opts.createHasher ?? defaultHasherFactory;
  return new Writer(upload, await createHasher(), opts);
}

/** A writer for an upload already in storage (after a restart): offset, tail, etags and hasher state from its keys. */
export async function resumeUploadWriter(driver: StorageDriver, ref: { namespace: string; id: string }, opts: ResumeOptions = {}): Promise<UploadWriter> {
  const read = committedReader(driver, retryPolicy(opts));
  const upload = await StoredUpload.load(driver, ref, read, opts.exists === true);
  const createHasher = opts.createHasher ?? defaultHasherFactory;
  let hasher = await loadHasher(read, upload.info, createHasher);
  if (!hasher && upload.etags.length === 0) {
    // The whole upload so far is the tail, read above: the state is rebuilt from it.
    hasher = await createHasher();
    hasher.update(upload.tail);
  }
  return new Writer(upload, hasher, opts);
}

function retryPolicy(opts: WriterOptions): RetryPolicy {
  return {
    retries: opts.validateRetries ?? DEFAULT_RETRIES,
    delayMs: opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
    sleep: opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
  };
}

class Writer implements UploadWriter {
  private closed = false;
  /** Part buffers reused from one write to the next (./pipeline.ts). */
  private readonly buffers: Uint8Array[] = [];
  private readonly createHasher: HasherFactory;
  private readonly createChecksum: ChecksumFactory;
  private readonly now: () => Date;
  private readonly retry: RetryPolicy;

  constructor(
    private readonly upload: StoredUpload,
    /** At the committed offset; undefined when its state was lost. */
    private hasher: ResumableSha256 | undefined,
    opts: WriterOptions,
  ) {
    this.createHasher = opts.createHasher ?? defaultHasherFactory;
    this.createChecksum = opts.createChecksum ?? defaultChecksumFactory;
    this.now = opts.now ?? (() => new Date());
    this.retry = retryPolicy(opts);
  }

  get namespace() {
    return this.upload.info.namespace;
  }
  get id() {
    return this.upload.info.id;
  }
  get startedAt() {
    return this.upload.info.startedAt;
  }
  get length() {
    return this.upload.info.length;
  }
  get offset() {
    return this.upload.info.offset;
  }
  get declaredDigest() {
    return this.upload.info.declaredDigest;
  }
  get lastWriteAt() {
    return this.upload.info.lastWriteAt;
  }
  get verifiable() {
    // Without a hasher the finish re-reads the assembled data; that is only possible when the
    // data is under the upload, not in a multipart upload at the blob path (declared digest).
    const layout = this.upload.info.layout;
    return this.hasher !== undefined || (layout !== "at-blob" && layout !== "moving");
  }

  private assertVerifiable(): void {
    if (!this.verifiable) throw new HashStateUnavailableError(this.id);
  }

  async write(body: WriteBody, opts: WriteOptions = {}): Promise<{ written: number; offset: number }> {
    this.assertOpen();
    this.assertVerifiable(); // never take bytes in that can never be verified
    await settleMove(this.upload);
    const transactional = opts.transactional === true || opts.checksum !== undefined;
    const { length, offset: startOffset } = this.upload.info;
    const room = length - startOffset;
    const limit = Math.min(room, opts.maxBytes ?? Number.POSITIVE_INFINITY);
    const limitReason = opts.maxBytes !== undefined && opts.maxBytes < room ? "maxBytes" : "length";
    const hasher = this.hasher;
    const savedState = transactional ? hasher?.save() : undefined;
    const checksum = opts.checksum ? await this.createChecksum(opts.checksum.algorithm) : undefined;
    const pendingParts: UploadedPart[] = [];
    const pipeline = this.pipeline(transactional, checksum, (parts, received, state) => {
      if (transactional) pendingParts.push(...parts);
      else return this.upload.commit(startOffset + received, parts, new Uint8Array(0), state, this.now());
      return Promise.resolve();
    });

    /** Commits whatever was received and is not committed yet (the partial tail and pending parts). */
    const commitReceived = async (): Promise<void> => {
      const offset = startOffset + pipeline.received;
      if (offset !== this.upload.info.offset) await this.upload.commit(offset, pendingParts, pipeline.pending, hasher?.save(), this.now());
      await this.upload.cleanedUp();
    };
    const rollback = async (): Promise<void> => {
      // Parts stored meanwhile are not in `info`; later writes overwrite them by part number.
      if (savedState) this.hasher = await this.createHasher(savedState);
    };

    // Every path below settles the pipeline and commits (or drops) `pending` before it leaves,
    // so the part buffers can go back to the pool then.
    try {
      try {
        for await (const chunk of isAsyncIterable(body) ? body : bodyChunks(body)) {
          if (pipeline.received + chunk.length > limit) {
            if (!transactional) await pipeline.absorb(chunk.subarray(0, limit - pipeline.received));
            throw new BodyTooLargeError(limit, limitReason);
          }
          await pipeline.absorb(chunk);
        }
        await pipeline.drain();
      } catch (err) {
        await pipeline.settle(); // nothing may still be stored once write returns
        if (transactional) await rollback();
        else if (pipeline.failed || pipeline.holdsFullPart) {
          // A full part could not be stored (or committed). The bytes after it must not be
          // committed (`info` counts full parts from the offset), and the hasher is past the
          // committed offset: this writer is done; resumeUploadWriter continues from the last commit.
          this.closed = true;
          await this.upload.cleanedUp().catch(() => undefined);
          throw pipeline.failed ? pipeline.error : err;
        } else {
          await commitReceived().catch((commitErr: unknown) => this.fail(commitErr));
        }
        throw err;
      }
      if (checksum && opts.checksum) {
        const actual = await checksum.digest();
        if (!equalBytes(actual, opts.checksum.expected)) {
          await rollback();
          throw new ChecksumMismatchError(opts.checksum.algorithm, opts.checksum.expected, actual);
        }
      }
      // A commit that fails leaves the hasher past the committed offset: resume from storage.
      await commitReceived().catch((err: unknown) => this.fail(err));
      return { written: pipeline.received, offset: this.upload.info.offset };
    } finally {
      pipeline.release();
    }
  }

  /**
   * The part pipeline of one write (./pipeline.ts explains the ordering): every byte goes through
   * the hasher and the body checksum; full parts are stored while the next one arrives, and
   * `stored` runs for each in part order.
   */
  private pipeline(
    transactional: boolean,
    checksum: { update(bytes: Uint8Array): void | Promise<void> } | undefined,
    stored: (parts: UploadedPart[], received: number, state: Uint8Array | undefined) => Promise<void>,
  ): PartPipeline {
    const { info, etags, tail } = this.upload;
    const hasher = this.hasher;
    const multipart = info.layout === "tail" ? undefined : this.upload.driver.resumeMultipart(info.multipart.key, info.multipart.uploadId);
    return new PartPipeline({
      partSize: info.partSize,
      capacity: multipart ? info.length - etags.length * info.partSize : info.length,
      tail,
      buffers: this.buffers,
      firstPartNumber: etags.length + 1,
      ...(multipart ? { uploadPart: (n: number, bytes: Uint8Array) => multipart.uploadPart(n, bytes) } : {}),
      consume: async (bytes) => {
        hasher?.update(bytes);
        await checksum?.update(bytes);
      },
      saveState: () => (transactional ? undefined : hasher?.save()),
      stored,
    });
  }

  async finish(digest?: Sha256Digest, hooks: FinishHooks = {}): Promise<{ digest: Sha256Digest; length: number; blobKey: string }> {
    this.assertOpen();
    this.assertVerifiable();
    const { length, offset } = this.upload.info;
    if (offset !== length) throw new UploadIncompleteError(offset, length);
    if (digest !== undefined) blobDataPath(digest); // validates it
    await settleMove(this.upload);
    const result = await validateAndMove({ upload: this.upload, hasher: this.hasher, createHasher: this.createHasher, retry: this.retry }, digest);
    await linkBlob(this.upload.driver, this.namespace, result);
    await hooks.linked?.({ digest: result, length });
    await this.upload.removeKeys();
    this.closed = true;
    return { digest: result, length, blobKey: blobDataPath(result) };
  }

  async declareDigest(digest: Sha256Digest): Promise<void> {
    this.assertOpen();
    blobDataPath(digest); // validates it
    await settleMove(this.upload);
    const info = this.upload.info;
    if (info.declaredDigest !== undefined) {
      if (info.declaredDigest !== digest) throw new DigestConflictError(info.declaredDigest, digest);
      return;
    }
    // The blob path's data can only be verified by the hasher (parts of an incomplete upload
    // cannot be read), so without a state the data stays under the upload for finish to re-read.
    if (!this.hasher || info.layout === "assembled") return;
    await this.upload.cleanedUp();
    try {
      if (info.layout === "tail") {
        await this.upload.save({ ...info, declaredDigest: digest });
        return;
      }
      const target = await this.upload.driver.createMultipart(blobDataPath(digest));
      const moveFrom = { ...info.multipart, parts: this.upload.etags.length };
      await this.upload.save({ ...info, layout: "moving", declaredDigest: digest, multipart: { key: target.key, uploadId: target.uploadId }, moveFrom });
      await settleMove(this.upload);
    } catch (err) {
      this.fail(err); // resumeUploadWriter picks the move up from `info`
    }
  }

  async cancel(): Promise<void> {
    await this.upload.discard();
    this.closed = true;
  }

  /** Closes this writer (its state is no longer the committed one: resume from storage) and throws `err`. */
  private fail(err: unknown): never {
    this.closed = true;
    throw err;
  }

  private assertOpen(): void {
    if (this.closed || this.upload.closed) throw new WriterClosedError(this.id);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function isAsyncIterable(body: WriteBody): body is AsyncIterable<Uint8Array> {
  return !(body instanceof Uint8Array) && !(body instanceof ReadableStream) && Symbol.asyncIterator in body;
}
