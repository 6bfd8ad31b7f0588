/**
 * The upload's committed state in storage: `_uploads/<id>/info` (UploadInfo), the part etags in
 * `parts/<group>` objects, the tail and the hasher state at the committed offset. This module is
 * the only one that reads or writes them; `info` is the commit point, written last.
 *
 * Commits. A commit first stores everything the new offset needs (part etags, the tail at that
 * offset, the hasher state at that offset, all keyed by offset so the previous commit's keys stay
 * intact), then rewrites `info` (If-Match the version this writer knows), then deletes the
 * superseded tail and hasher state in the background; the next commit, and the end of a write,
 * wait for that deletion. A crash at any step leaves `info` naming a complete, consistent set.
 */
import type { Sha256Digest } from "../../shared/digest.ts";
import { removeUploadKeys } from "../registry/blobs.ts";
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
} from "../registry/paths.ts";
import { readAll } from "../storage/body.ts";
import { PathNotFoundError, PreconditionFailedError, type StorageDriver, type UploadedPart } from "../storage/driver.ts";
import { abortUnrecorded } from "./copy.ts";
import { UploadChangedError, UploadExistsError, UploadUnknownError } from "./errors.ts";
import { settled } from "./settled.ts";

/** A multipart upload as the store names it. */
export interface MultipartRef {
  key: string;
  uploadId: string;
}

interface InfoFields {
  version: 1;
  namespace: string;
  id: string;
  length: number;
  /** RFC 3339, as distribution writes `startedat`. */
  startedAt: string;
  lastWriteAt: string;
  partSize: number;
  /** Committed bytes. */
  offset: number;
}

/**
 * Where an upload's bytes are, one layout per member, so a combination the writer never makes
 * (a digest declared on an upload assembled under its own prefix, a move without a target) cannot
 * be represented:
 * - `tail`: the whole upload fits one part and lives in the tail until the finish;
 * - `staged`: a multipart upload under the upload's prefix, digest not known yet;
 * - `assembled`: that multipart upload completed at the upload's data key (a finish under way);
 * - `at-blob`: a multipart upload that targets the declared digest's blob path (no copy at finish);
 * - `moving`: the digest was declared mid-upload; `moveFrom.parts` full parts of the staged upload
 *   are being copied to the `at-blob` target, until that copy is committed.
 */
export type UploadInfo =
  | (InfoFields & { layout: "tail"; declaredDigest?: Sha256Digest })
  | (InfoFields & { layout: "staged"; multipart: MultipartRef; declaredDigest?: undefined })
  | (InfoFields & { layout: "assembled"; multipart: MultipartRef; declaredDigest?: undefined })
  | (InfoFields & { layout: "at-blob"; multipart: MultipartRef; declaredDigest: Sha256Digest })
  | (InfoFields & { layout: "moving"; multipart: MultipartRef; declaredDigest: Sha256Digest; moveFrom: MultipartRef & { parts: number } });

/** The JSON stored at `info` (the format uploads in flight already have): optional fields, no layout. */
interface StoredInfo extends InfoFields {
  declaredDigest?: Sha256Digest;
  multipart?: MultipartRef;
  assembled?: true;
  moveFrom?: MultipartRef & { parts: number };
}

function toStored(info: UploadInfo): StoredInfo {
  const { layout, ...fields } = info;
  return layout === "assembled" ? { ...fields, assembled: true } : fields;
}

/** The layout a stored `info` stands for; a combination the writer never writes is refused. */
function fromStored(stored: StoredInfo): UploadInfo {
  const { declaredDigest, multipart, assembled, moveFrom, ...fields } = stored;
  if (!multipart) {
    if (assembled || moveFrom) throw inconsistent(stored);
    return { ...fields, layout: "tail", ...(declaredDigest !== undefined ? { declaredDigest } : {}) };
  }
  if (moveFrom) {
    if (!declaredDigest || assembled) throw inconsistent(stored);
    return { ...fields, layout: "moving", multipart, declaredDigest, moveFrom };
  }
  if (declaredDigest !== undefined) {
    if (assembled) throw inconsistent(stored);
    return { ...fields, layout: "at-blob", multipart, declaredDigest };
  }
  return { ...fields, layout: assembled ? "assembled" : "staged", multipart };
}

function inconsistent(stored: StoredInfo): Error {
  return new Error(`upload ${stored.id}: info names an impossible layout (${JSON.stringify(stored)})`);
}

/** Etags per `parts/<group>` object: bounded objects instead of one record growing to 10,000 etags. */
export const ETAGS_PER_GROUP = 1000;

/** Retries of reads that an eventually consistent store may answer with a stale "not found". */
export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** Attempt n (from 0) is followed by a wait of delayMs * 2^n. */
  delayMs: number;
  sleep: (ms: number) => Promise<void>;
}

export type CommittedRead = (key: string) => Promise<{ bytes: Uint8Array; etag: string }>;

/**
 * Reads a key the upload's committed state says exists. A store that is only eventually
 * consistent may answer "not found" for a key written just before: read again with backoff
 * before believing it.
 */
/** Whether the `info` at `key` names multipart upload `uploadId`; "unknown" when it cannot be read. */
async function recordedHere(read: CommittedRead, key: string, uploadId: string): Promise<boolean | "unknown"> {
  try {
    const stored = JSON.parse(new TextDecoder().decode((await read(key)).bytes)) as { multipart?: { uploadId?: string } };
    return stored.multipart?.uploadId === uploadId;
  } catch (err) {
    return err instanceof PathNotFoundError ? false : "unknown";
  }
}

export function committedReader(driver: StorageDriver, retry: RetryPolicy): CommittedRead {
  return async (key) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const got = await driver.get(key);
        return { bytes: await readAll(got.body), etag: got.etag };
      } catch (err) {
        if (!(err instanceof PathNotFoundError) || attempt >= retry.retries) throw err;
        await retry.sleep(retry.delayMs * 2 ** attempt);
      }
    }
  };
}

/** RFC 3339 without fractional seconds, as distribution writes `startedat`. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** An upload's committed state, loaded or created, and every write to it. */
export class StoredUpload {
  /** The last commit's deletion of superseded keys, still running (see commit). */
  #cleanup: Promise<void> | undefined;
  /** Set when `info` changed under this object (If-Match refused) or the upload was discarded. */
  #closed = false;

  private constructor(
    readonly driver: StorageDriver,
    private current: UploadInfo,
    /** The etag of `info` as last written or read: every rewrite is conditional on it. */
    private infoEtag: string,
    /** Etags of the committed parts, part n at index n-1. */
    private committedEtags: string[],
    /** Committed bytes after the last full part. */
    private committedTail: Uint8Array,
  ) {}

  get info(): UploadInfo {
    return this.current;
  }
  get etags(): readonly string[] {
    return this.committedEtags;
  }
  get tail(): Uint8Array {
    return this.committedTail;
  }
  /** True once a rewrite was refused (resume from storage instead) or the upload was discarded. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Creates the upload: `startedat`, the multipart upload when it needs more than one part (at the
   * blob path when the digest is known: completed only after verification, so never copied), then
   * `info`, only if absent (UploadExistsError otherwise).
   */
  static async create(
    driver: StorageDriver,
    init: { namespace: string; id: string; length: number; declaredDigest?: Sha256Digest; partSize: number; now: Date },
    read: CommittedRead,
  ): Promise<StoredUpload> {
    const { namespace, id, length, partSize, declaredDigest } = init;
    const now = rfc3339(init.now);
    const fields: InfoFields = { version: 1, namespace, id, length, startedAt: now, lastWriteAt: now, partSize, offset: 0 };
    await driver.put(uploadStartedAtPath(namespace, id), now);
    let info: UploadInfo;
    if (length <= partSize) info = { ...fields, layout: "tail", ...(declaredDigest !== undefined ? { declaredDigest } : {}) };
    else if (declaredDigest !== undefined) {
      info = { ...fields, layout: "at-blob", declaredDigest, multipart: await driver.createMultipart(blobDataPath(declaredDigest)) };
    } else info = { ...fields, layout: "staged", multipart: await driver.createMultipart(uploadDataPath(namespace, id)) };
    try {
      const stored = await driver.put(uploadInfoPath(namespace, id), JSON.stringify(toStored(info)), { onlyIf: { doesNotExist: true } });
      return new StoredUpload(driver, info, stored.etag, [], new Uint8Array(0));
    } catch (err) {
      if (info.layout === "tail") {
        if (err instanceof PreconditionFailedError) throw new UploadExistsError(namespace, id);
        throw err;
      }
      const multipart = info.multipart;
      if (!(err instanceof PreconditionFailedError)) {
        // The put may have taken effect with its answer lost: then `info` names this multipart
        // upload, and aborting it would leave an upload that can never be completed. Look first.
        const found = await recordedHere(read, uploadInfoPath(namespace, id), multipart.uploadId);
        if (found === "unknown") throw err; // cannot tell: leave it (an open upload is cheaper than a dead one)
        if (found) return StoredUpload.load(driver, { namespace, id }, read, true);
      }
      // Recorded nowhere: abort it, or it stays open for good.
      await abortUnrecorded(driver.resumeMultipart(multipart.key, multipart.uploadId));
      if (err instanceof PreconditionFailedError) throw new UploadExistsError(namespace, id);
      throw err;
    }
  }

  /**
   * Loads the committed state: `info` (read with `read` when the caller knows the upload exists,
   * else once: missing is UploadUnknownError), then the etags and the tail it names.
   */
  static async load(driver: StorageDriver, ref: { namespace: string; id: string }, read: CommittedRead, exists: boolean): Promise<StoredUpload> {
    const { namespace, id } = ref;
    let stored: StoredInfo;
    let infoEtag: string;
    try {
      const key = uploadInfoPath(validateNamespace(namespace), validateUploadId(id));
      const got = exists ? await read(key) : { ...(await driver.get(key)), bytes: undefined };
      infoEtag = got.etag;
      stored = JSON.parse(new TextDecoder().decode(got.bytes ?? (await readAll(got.body)))) as StoredInfo;
    } catch (err) {
      if (err instanceof PathNotFoundError) throw new UploadUnknownError(namespace, id);
      throw err;
    }
    if (stored.version !== 1 || stored.namespace !== namespace || stored.id !== id) throw new UploadUnknownError(namespace, id);
    const info = fromStored(stored);

    // Every key below was stored before the `info` that names it: "not found" is a stale read.
    const parts = info.layout === "tail" ? 0 : Math.floor(info.offset / info.partSize);
    const etags: string[] = [];
    for (let group = 0; group * ETAGS_PER_GROUP < parts; group++) {
      etags.push(...(JSON.parse(new TextDecoder().decode((await read(uploadPartsPath(namespace, id, group))).bytes)) as string[]));
    }
    etags.length = parts;
    const tailLength = info.offset - parts * info.partSize;
    const tail = tailLength > 0 ? (await read(uploadTailPath(namespace, id, info.offset))).bytes : new Uint8Array(0);
    if (tail.length !== tailLength) throw new Error(`upload ${id}: tail at ${info.offset} has ${tail.length} bytes, expected ${tailLength}`);
    return new StoredUpload(driver, info, infoEtag, etags, tail);
  }

  /**
   * Makes `offset` the committed offset: parts' etags, tail and hasher state at `offset` (`state`,
   * saved when the bytes up to `offset` had been hashed) first (new keys), then `info`. The
   * superseded keys are deleted in the background (while the next part is stored and committed);
   * the writer waits for every such deletion before a write returns (cleanedUp), so no key
   * outlives it.
   */
  async commit(offset: number, newParts: UploadedPart[], tail: Uint8Array, state: Uint8Array | undefined, now: Date): Promise<void> {
    const { namespace, id } = this.current;
    const before = { offset: this.current.offset, tail: this.committedTail.length > 0, state: state !== undefined && this.current.offset > 0 };
    const etags = [...this.committedEtags, ...newParts.map((p) => p.etag)];
    // The previous commit's deletions may still be running: they touch only superseded keys, so
    // this commit's writes need not wait for them (one round trip less per part).
    const writes: Promise<unknown>[] = newParts.length > 0 ? this.#putEtagGroups(etags, Math.floor(this.committedEtags.length / ETAGS_PER_GROUP)) : [];
    if (tail.length > 0) writes.push(this.driver.put(uploadTailPath(namespace, id, offset), tail));
    if (state) writes.push(this.driver.put(uploadHashStatePath(namespace, id, offset), state));
    await settled(writes);

    await this.save({ ...this.current, offset, lastWriteAt: rfc3339(now) });
    this.committedEtags = etags;
    this.committedTail = tail.slice();

    const stale: string[] = [];
    if (before.tail && before.offset !== offset) stale.push(uploadTailPath(namespace, id, before.offset));
    if (before.state && before.offset !== offset) stale.push(uploadHashStatePath(namespace, id, before.offset));
    if (stale.length > 0) {
      const cleanup = settled([this.#cleanup, this.driver.delete(...stale)]).then(() => undefined);
      cleanup.catch(() => undefined); // awaited later; never an unhandled rejection meanwhile
      this.#cleanup = cleanup;
    }
  }

  /** Replaces every committed etag (the parts were copied to another multipart upload). */
  async replaceEtags(etags: string[]): Promise<void> {
    await settled(this.#putEtagGroups(etags, 0));
    this.committedEtags = etags;
  }

  /** Stores `etags` in their `parts/<group>` objects from `firstGroup` on (earlier groups are unchanged). */
  #putEtagGroups(etags: string[], firstGroup: number): Promise<unknown>[] {
    const { namespace, id } = this.current;
    const writes: Promise<unknown>[] = [];
    for (let group = firstGroup; group * ETAGS_PER_GROUP < etags.length; group++) {
      const slice = etags.slice(group * ETAGS_PER_GROUP, (group + 1) * ETAGS_PER_GROUP);
      writes.push(this.driver.put(uploadPartsPath(namespace, id, group), JSON.stringify(slice)));
    }
    return writes;
  }

  /** Waits for the last commit's deletion of superseded keys (throws if it failed). */
  async cleanedUp(): Promise<void> {
    const cleanup = this.#cleanup;
    this.#cleanup = undefined;
    await cleanup;
  }

  /**
   * Rewrites `info` only if it is still the version this object knows (If-Match): a writer
   * resumed from a stale read, or one racing another, must never move the committed offset back.
   * Refused: UploadChangedError, and `closed` is set (resume from storage).
   */
  async save(info: UploadInfo): Promise<void> {
    try {
      const stored = await this.driver.put(uploadInfoPath(info.namespace, info.id), JSON.stringify(toStored(info)), { onlyIf: { etagMatches: this.infoEtag } });
      this.infoEtag = stored.etag;
      this.current = info;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      this.#closed = true;
      throw new UploadChangedError(info.id);
    }
  }

  /**
   * Every key of the upload: by name for those of the committed state (a listing of an eventually
   * consistent store can miss keys written just before), then whatever a listing still finds.
   */
  async removeKeys(): Promise<void> {
    const { namespace, id, offset } = this.current;
    const keys = [uploadStartedAtPath(namespace, id), uploadInfoPath(namespace, id), uploadDataPath(namespace, id)];
    for (let group = 0; group * ETAGS_PER_GROUP < this.committedEtags.length; group++) keys.push(uploadPartsPath(namespace, id, group));
    if (this.committedTail.length > 0) keys.push(uploadTailPath(namespace, id, offset));
    if (offset > 0) keys.push(uploadHashStatePath(namespace, id, offset));
    await removeUploadKeys(this.driver, namespace, id);
    await this.driver.delete(...keys);
  }

  /** Aborts every multipart upload the upload still has open and removes its keys. */
  async discard(): Promise<void> {
    const info = this.current;
    if (info.layout === "staged" || info.layout === "at-blob" || info.layout === "moving") {
      await this.driver.resumeMultipart(info.multipart.key, info.multipart.uploadId).abort();
    }
    // The assembled object of a move, if any, goes with the upload's keys.
    if (info.layout === "moving") await this.driver.resumeMultipart(info.moveFrom.key, info.moveFrom.uploadId).abort();
    await this.removeKeys();
    this.#closed = true;
  }
}
