/**
 * The upload writer: Docker distribution's layerWriter (registry/storage/layerwriter.go) on an
 * object store with R2's multipart rules. Pure logic over a StorageDriver; no HTTP here.
 *
 * Data flow. Bytes are cut into parts of one fixed size (every part but the last has the same
 * size, R2 error 10048). Bytes that do not fill a part stay in a pending tail, stored under the
 * upload, and are the start of the next part; so any sequence of write sizes is accepted and a
 * short non-final part is never sent (distribution #3873, tusd #1137). The body is streamed
 * through two part-sized buffers, one being received and hashed while the other's part is stored
 * (edge/writer-pipeline.ts): memory stays near two parts whatever the write sizes.
 *
 * Commits. The upload record (`info`) is the commit point. A commit first stores everything the
 * new offset needs (part etags, the tail at that offset, the hasher state at that offset, all
 * keyed by offset so the previous commit's keys stay intact), then rewrites `info`, then deletes
 * the superseded tail and hasher state (in the background, awaited before the next commit's
 * record and before write returns). Commits happen strictly in part order, each with the hasher
 * state saved when its offset was reached. A crash at any step leaves `info` naming a complete,
 * consistent set; uncommitted parts are simply uploaded again under the same part number.
 *
 * Finish (validate -> move -> link -> remove, as layerWriter.Finish; the first two in
 * edge/writer-finish.ts, copies in edge/writer-copy.ts, the record in edge/writer-record.ts):
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
 * declares early, so that copy is a small share of the data, and the finish copies nothing. The
 * record names the old upload (`moveFrom`) until the copy is committed: a crash half-way is
 * completed by the next write, finish or declare.
 */
import type { Sha256Digest } from "../shared/digest.ts";
import { DEFAULTS } from "../shared/protocol.ts";
import { sha256StateOffset, type ResumableSha256 } from "../shared/sha256.ts";
import {
  blobDataPath,
  uploadDataPath,
  uploadHashStatePath,
  uploadInfoPath,
  uploadPartsPath,
  uploadStartedAtPath,
  uploadTailPath,
  validateNamespace,
  validateUploadId,
} from "./registry/paths.ts";
import { linkBlob, removeUploadKeys } from "./registry/blobs.ts";
import { bodyChunks } from "./body-chunks.ts";
import { readAll } from "./storage/body.ts";
import {
  MULTIPART_LIMITS,
  PathNotFoundError,
  PreconditionFailedError,
  type ObjectInfo,
  type StorageDriver,
  type UploadedPart,
} from "./storage/driver.ts";
import {
  BodyTooLargeError,
  ChecksumMismatchError,
  DigestConflictError,
  HashStateUnavailableError,
  UploadChangedError,
  UploadExistsError,
  UploadIncompleteError,
  UploadTooLargeError,
  UploadUnknownError,
  WriterClosedError,
} from "./writer-errors.ts";
import { PartPipeline } from "./writer-pipeline.ts";
import { copyParts } from "./writer-copy.ts";
import { validateAndMove } from "./writer-finish.ts";
import { ETAGS_PER_GROUP, completeOnce, type UploadInfo } from "./writer-record.ts";
import { defaultChecksumFactory, defaultHasherFactory, type ChecksumFactory, type HasherFactory } from "./writer-hashers.ts";

export * from "./writer-errors.ts";
export type { ChecksumFactory, ChecksumHasher, HasherFactory } from "./writer-hashers.ts";

export interface WriterOptions {
  /** Multipart part size for a new upload (default DEFAULTS.partSize, 8 MiB; at least 5 MiB). A resumed upload keeps its own. */
  partSize?: number;
  /** Validation attempts after the first (default 5), for eventually consistent stores. */
  validateRetries?: number;
  /** Backoff base: attempt n waits retryDelayMs * 2^n (default 100 ms). */
  retryDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => Date;
  /** Resumable SHA-256 (default: edge/sha256.ts in workerd, hash-wasm elsewhere). */
  createHasher?: HasherFactory;
  /** tus body checksums (default: crypto.DigestStream in workerd, hash-wasm elsewhere). */
  createChecksum?: ChecksumFactory;
}

/**
 * A write's bytes: a stream (read with edge/body-chunks.ts), bytes, or chunks already read (the
 * Durable Object passes bodyChunks with its idle timeout). A chunk may be reused once the next is
 * requested.
 */
export type WriteBody = ReadableStream<Uint8Array> | Uint8Array | AsyncIterable<Uint8Array>;

export interface WriteOptions {
  /**
   * Commit nothing until the whole body arrived (and its checksum matched). Implied by `checksum`.
   * Used for Upload-Checksum and for bodies without Content-Length.
   */
  transactional?: boolean;
  /** Refuse a body longer than this (BodyTooLargeError). */
  maxBytes?: number;
  /** tus checksum of this body. */
  checksum?: { algorithm: "sha1" | "sha256"; expected: Uint8Array };
}

/** Steps of finish() the caller takes part in. */
export interface FinishHooks {
  /**
   * Called once the blob is verified, at its path and linked, before the upload's keys are
   * removed: the caller records the upload as finished here (its commit point), so a crash
   * during the removal cannot leave an upload that is neither resumable nor finished. When it
   * throws, nothing is removed and finish throws; finish can be called again.
   */
  linked?(result: { digest: Sha256Digest; length: number }): Promise<void>;
}

export interface UploadWriter {
  readonly namespace: string;
  readonly id: string;
  /** RFC 3339, as stored in `startedat`. */
  readonly startedAt: string;
  readonly length: number;
  /** Committed bytes. */
  readonly offset: number;
  readonly declaredDigest?: Sha256Digest;
  /** RFC 3339 time of the last commit (or creation), for expiry. */
  readonly lastWriteAt: string;
  /**
   * Appends a request body. Non-transactional (default): every full part is committed (part
   * stored, then tail + hasher state at that offset + info) as soon as it is stored, so a body cut
   * off mid-way keeps its complete parts; on a stream error the bytes received so far (including
   * the partial tail) are committed too, then the error is rethrown.
   * Transactional: parts may be stored but nothing is committed until the end; a checksum
   * mismatch throws ChecksumMismatchError and leaves the upload exactly as before.
   * More than `maxBytes`, or past the upload length: BodyTooLargeError (transactional: nothing kept).
   * After a storage failure the writer may be closed (WriterClosedError on the next call): make a
   * new one with resumeUploadWriter, which continues from the last commit.
   */
  write(body: WriteBody, opts?: WriteOptions): Promise<{ written: number; offset: number }>;
  /**
   * When offset === length: validate, move, link, remove the upload's keys. The digest is the
   * one given here or declared at creation (both must match when both are given), else the one
   * computed. A mismatch throws DigestMismatchError after removing the upload's resources.
   */
  finish(digest?: Sha256Digest, hooks?: FinishHooks): Promise<{ digest: Sha256Digest; length: number; blobKey: string }>;
  /**
   * False when the saved hasher state was lost and the bytes stored so far cannot be re-read
   * before they reach the blob path (a multipart upload that targets it): such an upload can
   * never be verified, so write and finish throw HashStateUnavailableError; cancel it and start
   * again.
   */
  readonly verifiable: boolean;
  /**
   * Declares the whole upload's digest before its last byte, so the finish needs no copy: the
   * parts stored so far move to a multipart upload at the blob path now (copied through this
   * worker when the store has no server-side copy), and later parts go there directly. Nothing is
   * visible at the blob path before the finish has verified the digest. A second declaration of
   * the same digest does nothing; a different one throws DigestConflictError. Without a usable
   * hasher state nothing changes (the finish must re-read the data, which it can only do under the
   * upload): pass the digest to `finish` instead, which checks it then.
   */
  declareDigest(digest: Sha256Digest): Promise<void>;
  /** Aborts the multipart upload and removes every key under the upload. */
  cancel(): Promise<void>;
}

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

  const now = rfc3339((opts.now ?? (() => new Date()))());
  const info: UploadInfo = { version: 1, namespace, id, length, startedAt: now, lastWriteAt: now, partSize, offset: 0 };
  if (init.declaredDigest !== undefined) info.declaredDigest = init.declaredDigest;
  await driver.put(uploadStartedAtPath(namespace, id), now);
  if (length > partSize) {
    // With the digest known, the multipart upload targets the blob path itself: it is completed
    // only after verification, so the blob never has to be copied.
    const target = init.declaredDigest !== undefined ? blobDataPath(init.declaredDigest) : uploadDataPath(namespace, id);
    const mp = await driver.createMultipart(target);
    info.multipart = { key: mp.key, uploadId: mp.uploadId };
  }
  let stored: ObjectInfo;
  try {
    stored = await driver.put(uploadInfoPath(namespace, id), JSON.stringify(info), { onlyIf: { doesNotExist: true } });
  } catch (err) {
    // The multipart upload is recorded nowhere else: abort it, or it stays open for good.
    if (info.multipart) await driver.resumeMultipart(info.multipart.key, info.multipart.uploadId).abort().catch(() => undefined);
    if (err instanceof PreconditionFailedError) throw new UploadExistsError(namespace, id);
    throw err;
  }
  const createHasher = opts.createHasher ?? defaultHasherFactory;
  return new Writer(driver, info, stored.etag, [], new Uint8Array(0), await createHasher(), opts);
}

/** How resumeUploadWriter treats a missing `info`. */
export interface ResumeOptions extends WriterOptions {
  /**
   * The caller knows the upload was created (the upload object's own record says so): a missing
   * `info` is then read again with backoff (a store's stale read) before UploadUnknownError.
   */
  exists?: boolean;
}

/** A writer for an upload already in storage (after a restart): offset, tail, etags and hasher state from its keys. */
export async function resumeUploadWriter(
  driver: StorageDriver,
  ref: { namespace: string; id: string },
  opts: ResumeOptions = {},
): Promise<UploadWriter> {
  const { namespace, id } = ref;
  const read = committedReader(driver, opts);
  let info: UploadInfo;
  let infoEtag: string;
  try {
    const key = uploadInfoPath(validateNamespace(namespace), validateUploadId(id));
    const got = opts.exists ? await read(key) : { ...(await driver.get(key)), bytes: undefined };
    infoEtag = got.etag;
    info = JSON.parse(new TextDecoder().decode(got.bytes ?? (await readAll(got.body)))) as UploadInfo;
  } catch (err) {
    if (err instanceof PathNotFoundError) throw new UploadUnknownError(namespace, id);
    throw err;
  }
  if (info.version !== 1 || info.namespace !== namespace || info.id !== id) throw new UploadUnknownError(namespace, id);

  // Every key below was stored before the `info` that names it: "not found" is a stale read.
  const parts = committedParts(info);
  const etags: string[] = [];
  for (let group = 0; group * ETAGS_PER_GROUP < parts; group++) {
    etags.push(...(JSON.parse(new TextDecoder().decode((await read(uploadPartsPath(namespace, id, group))).bytes)) as string[]));
  }
  etags.length = parts;

  const tailLength = info.offset - parts * info.partSize;
  const tail = tailLength > 0 ? (await read(uploadTailPath(namespace, id, info.offset))).bytes : new Uint8Array(0);
  if (tail.length !== tailLength) throw new Error(`upload ${id}: tail at ${info.offset} has ${tail.length} bytes, expected ${tailLength}`);

  const createHasher = opts.createHasher ?? defaultHasherFactory;
  let hasher = await loadHasher(read, info, createHasher);
  if (!hasher && parts === 0) {
    // The whole upload so far is the tail, read above: the state is rebuilt from it.
    hasher = await createHasher();
    hasher.update(tail);
  }
  return new Writer(driver, info, infoEtag, etags, tail, hasher, opts);
}

type CommittedRead = (key: string) => Promise<{ bytes: Uint8Array; etag: string }>;

/**
 * Reads a key the upload's committed state says exists. A store that is only eventually
 * consistent may answer "not found" for a key written just before: read again with the finish's
 * backoff (retryDelayMs * 2^n, validateRetries times) before believing it.
 */
function committedReader(driver: StorageDriver, opts: WriterOptions): CommittedRead {
  const retries = opts.validateRetries ?? DEFAULT_RETRIES;
  const delay = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  return async (key) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const got = await driver.get(key);
        return { bytes: await readAll(got.body), etag: got.etag };
      } catch (err) {
        if (!(err instanceof PathNotFoundError) || attempt >= retries) throw err;
        await sleep(delay * 2 ** attempt);
      }
    }
  };
}

/** Full parts stored and committed: none while the upload fits one part (it lives in the tail). */
function committedParts(info: UploadInfo): number {
  return info.multipart ? Math.floor(info.offset / info.partSize) : 0;
}

/**
 * The hasher at the committed offset, from its saved state; undefined when the state is missing
 * or unusable (another hash-wasm build): finish then re-reads the data, as distribution does.
 */
async function loadHasher(read: CommittedRead, info: UploadInfo, createHasher: HasherFactory): Promise<ResumableSha256 | undefined> {
  if (info.offset === 0) return createHasher();
  try {
    const { bytes: state } = await read(uploadHashStatePath(info.namespace, info.id, info.offset));
    // A state that decodes but stands for another offset would verify the wrong bytes.
    if (sha256StateOffset(state) !== info.offset) return undefined;
    return await createHasher(state);
  } catch (err) {
    if (err instanceof PathNotFoundError || (err instanceof Error && err.name === "HashStateError")) return undefined;
    throw err;
  }
}

class Writer implements UploadWriter {
  private closed = false;
  /** The last commit's deletion of superseded keys, still running (see commit). */
  private cleanup: Promise<void> | undefined;
  /** Part buffers reused from one write to the next (edge/writer-pipeline.ts). */
  private readonly buffers: Uint8Array[] = [];
  private readonly createHasher: HasherFactory;
  private readonly createChecksum: ChecksumFactory;
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(
    private readonly driver: StorageDriver,
    private info: UploadInfo,
    /** The etag of `info` as this writer last wrote or read it: every rewrite is conditional on it. */
    private infoEtag: string,
    /** Etags of the committed parts, part n at index n-1. */
    private etags: string[],
    /** Committed bytes after the last full part. */
    private tail: Uint8Array,
    /** At the committed offset; undefined when its state was lost. */
    private hasher: ResumableSha256 | undefined,
    opts: WriterOptions,
  ) {
    this.createHasher = opts.createHasher ?? defaultHasherFactory;
    this.createChecksum = opts.createChecksum ?? defaultChecksumFactory;
    this.now = opts.now ?? (() => new Date());
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.retries = opts.validateRetries ?? DEFAULT_RETRIES;
    this.retryDelayMs = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  }

  get namespace() {
    return this.info.namespace;
  }
  get id() {
    return this.info.id;
  }
  get startedAt() {
    return this.info.startedAt;
  }
  get length() {
    return this.info.length;
  }
  get offset() {
    return this.info.offset;
  }
  get declaredDigest() {
    return this.info.declaredDigest;
  }
  get lastWriteAt() {
    return this.info.lastWriteAt;
  }
  get verifiable() {
    // Without a hasher the finish re-reads the assembled data; that is only possible when the
    // multipart upload is under the upload, not at the blob path (declared digest).
    return this.hasher !== undefined || this.info.declaredDigest === undefined || !this.info.multipart;
  }

  private assertVerifiable(): void {
    if (!this.verifiable) throw new HashStateUnavailableError(this.info.id);
  }

  async write(body: WriteBody, opts: WriteOptions = {}): Promise<{ written: number; offset: number }> {
    this.assertOpen();
    this.assertVerifiable(); // never take bytes in that can never be verified
    await this.settleMove();
    const transactional = opts.transactional === true || opts.checksum !== undefined;
    const { partSize, length } = this.info;
    const room = length - this.info.offset;
    const limit = Math.min(room, opts.maxBytes ?? Number.POSITIVE_INFINITY);
    const limitReason = opts.maxBytes !== undefined && opts.maxBytes < room ? "maxBytes" : "length";

    const startOffset = this.info.offset;
    const hasher = this.hasher;
    const savedState = transactional ? hasher?.save() : undefined;
    const checksum = opts.checksum ? await this.createChecksum(opts.checksum.algorithm) : undefined;
    const pendingParts: UploadedPart[] = [];
    const multipart = this.info.multipart ? this.driver.resumeMultipart(this.info.multipart.key, this.info.multipart.uploadId) : undefined;
    // Full parts are stored while the next one arrives (edge/writer-pipeline.ts explains the
    // ordering); non-transactional writes commit each as soon as it is stored.
    const pipeline = new PartPipeline({
      partSize,
      capacity: multipart ? length - this.etags.length * partSize : length,
      tail: this.tail,
      buffers: this.buffers,
      firstPartNumber: this.etags.length + 1,
      ...(multipart ? { uploadPart: (n: number, bytes: Uint8Array) => multipart.uploadPart(n, bytes) } : {}),
      consume: async (bytes) => {
        hasher?.update(bytes);
        await checksum?.update(bytes);
      },
      saveState: () => (transactional ? undefined : hasher?.save()),
      stored: async (part, received, state) => {
        if (transactional) pendingParts.push(part);
        else await this.commit(startOffset + received, [part], new Uint8Array(0), state);
      },
    });

    /** Commits whatever was received and is not committed yet (the partial tail and pending parts). */
    const commitReceived = async (): Promise<void> => {
      const offset = startOffset + pipeline.received;
      if (offset !== this.info.offset) await this.commit(offset, pendingParts, pipeline.pending, hasher?.save());
      await this.cleanedUp();
    };
    const rollback = async (): Promise<void> => {
      // Parts stored meanwhile are not in the record; later writes overwrite them by part number.
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
          // committed (the record counts full parts from the offset), and the hasher is past the
          // committed offset: this writer is done; resumeUploadWriter continues from the last commit.
          this.closed = true;
          await this.cleanedUp().catch(() => undefined);
          throw pipeline.failed ? pipeline.error : err;
        } else {
          await commitReceived().catch((commitErr: unknown) => {
            this.closed = true;
            throw commitErr;
          });
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
      try {
        await commitReceived();
      } catch (err) {
        // The hasher is past the committed offset now; the next writer must come from storage.
        this.closed = true;
        throw err;
      }
      return { written: pipeline.received, offset: this.info.offset };
    } finally {
      pipeline.release();
    }
  }

  /**
   * Makes `offset` the committed offset: parts' etags, tail and hasher state at `offset` (`state`,
   * saved when the bytes up to `offset` had been hashed) first (new keys), then the record. The
   * superseded keys are deleted in the background (`cleanup`, while the next part is stored): the
   * next commit waits for that before its first write, and write() before it returns
   * (cleanedUp), so no key outlives it.
   */
  private async commit(offset: number, newParts: UploadedPart[], tail: Uint8Array, state: Uint8Array | undefined): Promise<void> {
    const { namespace, id } = this.info;
    const before = { offset: this.info.offset, tail: this.tail.length > 0, state: this.hasher !== undefined && this.info.offset > 0 };
    const etags = [...this.etags, ...newParts.map((p) => p.etag)];
    // The previous commit's deletions finish before this commit writes anything: no store sees a
    // delete and a put under the same prefix at once (s3rver, file-backed, prunes directories).
    await this.cleanedUp();
    const writes: Promise<unknown>[] = newParts.length > 0 ? this.putEtagGroups(etags, Math.floor(this.etags.length / ETAGS_PER_GROUP)) : [];
    if (tail.length > 0) writes.push(this.driver.put(uploadTailPath(namespace, id, offset), tail));
    if (state) writes.push(this.driver.put(uploadHashStatePath(namespace, id, offset), state));
    await Promise.all(writes);

    const info: UploadInfo = { ...this.info, offset, lastWriteAt: rfc3339(this.now()) };
    await this.putInfo(info);
    this.etags = etags;
    this.tail = tail.slice();

    const stale: string[] = [];
    if (before.tail && before.offset !== offset) stale.push(uploadTailPath(namespace, id, before.offset));
    if (before.state && before.offset !== offset) stale.push(uploadHashStatePath(namespace, id, before.offset));
    if (stale.length > 0) {
      const cleanup = this.driver.delete(...stale);
      cleanup.catch(() => undefined); // awaited later; never an unhandled rejection meanwhile
      this.cleanup = cleanup;
    }
  }

  /** Stores `etags` in their `parts/<group>` objects from `firstGroup` on (earlier groups are unchanged). */
  private putEtagGroups(etags: string[], firstGroup: number): Promise<unknown>[] {
    const { namespace, id } = this.info;
    const writes: Promise<unknown>[] = [];
    for (let group = firstGroup; group * ETAGS_PER_GROUP < etags.length; group++) {
      writes.push(this.driver.put(uploadPartsPath(namespace, id, group), JSON.stringify(etags.slice(group * ETAGS_PER_GROUP, (group + 1) * ETAGS_PER_GROUP))));
    }
    return writes;
  }

  /** Waits for the last commit's deletion of superseded keys (throws if it failed). */
  private async cleanedUp(): Promise<void> {
    const cleanup = this.cleanup;
    this.cleanup = undefined;
    await cleanup;
  }

  async finish(digest?: Sha256Digest, hooks: FinishHooks = {}): Promise<{ digest: Sha256Digest; length: number; blobKey: string }> {
    this.assertOpen();
    this.assertVerifiable();
    const { length, offset } = this.info;
    if (offset !== length) throw new UploadIncompleteError(offset, length);
    if (digest !== undefined) blobDataPath(digest); // validates it
    await this.settleMove();
    const writer = this;
    const result = await validateAndMove(
      {
        driver: this.driver,
        get info() {
          return writer.info;
        },
        etags: this.etags,
        tail: this.tail,
        hasher: this.hasher,
        createHasher: this.createHasher,
        retries: this.retries,
        retryDelayMs: this.retryDelayMs,
        sleep: this.sleep,
        saveInfo: (info) => this.saveInfo(info),
        cancel: () => this.cancel(),
      },
      digest,
    );
    await linkBlob(this.driver, this.info.namespace, result);
    await hooks.linked?.({ digest: result, length });
    await this.removeKeys();
    this.closed = true;
    return { digest: result, length, blobKey: blobDataPath(result) };
  }

  async declareDigest(digest: Sha256Digest): Promise<void> {
    this.assertOpen();
    blobDataPath(digest); // validates it
    await this.settleMove();
    const { declaredDigest, multipart } = this.info;
    if (declaredDigest !== undefined) {
      if (declaredDigest !== digest) throw new DigestConflictError(declaredDigest, digest);
      return;
    }
    // The blob path's data can only be verified by the hasher (parts of an incomplete upload
    // cannot be read), so without a state the data stays under the upload for finish to re-read.
    if (!this.hasher || this.info.assembled) return;
    await this.cleanedUp();
    try {
      if (!multipart) {
        await this.saveInfo({ ...this.info, declaredDigest: digest });
        return;
      }
      const target = await this.driver.createMultipart(blobDataPath(digest));
      const moveFrom = { key: multipart.key, uploadId: multipart.uploadId, parts: this.etags.length };
      await this.saveInfo({ ...this.info, declaredDigest: digest, multipart: { key: target.key, uploadId: target.uploadId }, moveFrom });
      await this.settleMove();
    } catch (err) {
      this.closed = true; // resumeUploadWriter picks the move up from the record
      throw err;
    }
  }

  /**
   * Completes a move of stored parts to the blob path's multipart upload (declareDigest), also one
   * a crash interrupted: assemble the moved parts under the upload (unless done already), copy
   * them into the new upload, commit their etags, delete the assembled object.
   */
  private async settleMove(): Promise<void> {
    const from = this.info.moveFrom;
    if (!from) return;
    const { partSize } = this.info;
    const source = this.driver.resumeMultipart(from.key, from.uploadId);
    if (from.parts === 0) {
      await source.abort();
    } else {
      const target = this.info.multipart as { key: string; uploadId: string };
      const size = from.parts * partSize;
      // After a crash past this point the etags may already be the copies': the upload id is gone then.
      await completeOnce(this.driver, source, this.etags.slice(0, from.parts).map((etag, i) => ({ partNumber: i + 1, etag })), size);
      const copied = await copyParts(this.driver, from.key, this.driver.resumeMultipart(target.key, target.uploadId), size, partSize);
      const etags = [...copied.map((p) => p.etag), ...this.etags.slice(from.parts)];
      await Promise.all(this.putEtagGroups(etags, 0));
      this.etags = etags;
    }
    const { moveFrom: _, ...info } = this.info;
    await this.saveInfo(info);
    if (from.parts > 0) await this.driver.delete(from.key);
  }

  /** Rewrites the upload record (a commit of its own, outside write's part commits). */
  private async saveInfo(info: UploadInfo): Promise<void> {
    await this.putInfo(info);
  }

  /**
   * Rewrites `info` only if it is still the version this writer knows (If-Match): a writer
   * resumed from a stale read, or one racing another, must never move the committed offset back.
   * Refused: UploadChangedError, and this writer is closed (resume from storage).
   */
  private async putInfo(info: UploadInfo): Promise<void> {
    try {
      const stored = await this.driver.put(uploadInfoPath(info.namespace, info.id), JSON.stringify(info), { onlyIf: { etagMatches: this.infoEtag } });
      this.infoEtag = stored.etag;
      this.info = info;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      this.closed = true;
      throw new UploadChangedError(info.id);
    }
  }

  /**
   * Every key of the upload: by name for those of the committed state (a listing of an eventually
   * consistent store can miss keys written just before), then whatever a listing still finds.
   */
  private async removeKeys(): Promise<void> {
    const { namespace, id, offset } = this.info;
    const keys = [uploadStartedAtPath(namespace, id), uploadInfoPath(namespace, id), uploadDataPath(namespace, id)];
    for (let group = 0; group * ETAGS_PER_GROUP < this.etags.length; group++) keys.push(uploadPartsPath(namespace, id, group));
    if (this.tail.length > 0) keys.push(uploadTailPath(namespace, id, offset));
    if (offset > 0) keys.push(uploadHashStatePath(namespace, id, offset));
    await removeUploadKeys(this.driver, namespace, id);
    await this.driver.delete(...keys);
  }

  async cancel(): Promise<void> {
    const mp = this.info.multipart;
    if (mp && !this.info.assembled) await this.driver.resumeMultipart(mp.key, mp.uploadId).abort();
    const from = this.info.moveFrom;
    if (from) await this.driver.resumeMultipart(from.key, from.uploadId).abort(); // the assembled object, if any, goes with the upload's keys
    await this.removeKeys();
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new WriterClosedError(this.info.id);
  }
}

/** RFC 3339 without fractional seconds, as distribution writes `startedat`. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function isAsyncIterable(body: WriteBody): body is AsyncIterable<Uint8Array> {
  return !(body instanceof Uint8Array) && !(body instanceof ReadableStream) && Symbol.asyncIterator in body;
}
