/**
 * The upload writer's public API: create or resume a writer, what it takes, what it throws.
 * Docker distribution's layerWriter (registry/storage/layerwriter.go) on an object store with R2's
 * multipart rules; ./writer.ts tells how it works.
 */
import type { Sha256Digest } from "../../shared/digest.ts";
import type { ChecksumFactory } from "./checksum.ts";
import type { HasherFactory } from "./hashers.ts";

export { createUploadWriter, resumeUploadWriter } from "./writer.ts";
export * from "./errors.ts";
export type { ChecksumFactory } from "./checksum.ts";
export type { HasherFactory } from "./hashers.ts";

export interface WriterOptions {
  /** Multipart part size for a new upload (default DEFAULTS.partSize, 8 MiB; at least 5 MiB). A resumed upload keeps its own. */
  partSize?: number;
  /** Validation attempts after the first (default 5), for eventually consistent stores. */
  validateRetries?: number;
  /** Backoff base: attempt n waits retryDelayMs * 2^n (default 100 ms). */
  retryDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => Date;
  /** Resumable SHA-256 (default: ./sha256.ts in workerd, hash-wasm elsewhere). */
  createHasher?: HasherFactory;
  /** tus body checksums (default: crypto.DigestStream in workerd, hash-wasm elsewhere). */
  createChecksum?: ChecksumFactory;
}

/**
 * A write's bytes: a stream (read with ./body-chunks.ts), bytes, or chunks already read (the
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

/** How resumeUploadWriter treats a missing `info`. */
export interface ResumeOptions extends WriterOptions {
  /**
   * The caller knows the upload was created (the upload object's own record says so): a missing
   * `info` is then read again with backoff (a store's stale read) before UploadUnknownError.
   */
  exists?: boolean;
}
