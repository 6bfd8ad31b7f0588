/**
 * The storage driver interface: the few object-store operations the upload writer and the HTTP
 * layer need, small enough to implement over the R2 binding, in memory, and over the S3 REST API
 * (ranged GET, conditional PUT, HEAD, ListObjectsV2, DeleteObjects, multipart
 * create/UploadPart/Complete/Abort, CopyObject as the optional server-side copy).
 *
 * Modelled on Docker distribution's registry/storage/driver/storagedriver.go: keys are plain
 * object keys (no directories), and every failure a caller may want to act on is a typed error
 * carrying the path and the driver's name. Drivers are factories (`createR2Driver(bucket)`,
 * `createMemoryDriver()`); each returns its raw implementation wrapped by `withKeyValidation`
 * (./base.ts), which rejects malformed keys before they reach a store and turns whatever a store
 * throws into the errors below, so callers never see a store-specific exception.
 */

/** A body whose length is known up front (R2 and S3 both need the length to stream a body). */
export interface SizedStream {
  stream: ReadableStream<Uint8Array>;
  length: number;
}

/** What `put` and `uploadPart` accept. Strings are stored as UTF-8. */
export type PutBody = Uint8Array | string | SizedStream;

/**
 * A byte range, as R2 and HTTP express it: from `offset` (to the end, or `length` bytes), or the
 * last `suffix` bytes. A range that starts at or past the end is an InvalidRangeError; a length
 * running past the end is clamped, as HTTP does.
 */
export type ByteRange = { offset: number; length?: number } | { suffix: number };

/** Metadata of a stored object. */
export interface ObjectInfo {
  key: string;
  /** Size of the whole object in bytes. */
  size: number;
  /** The store's entity tag, unquoted; opaque, only compared for equality. */
  etag: string;
  modified: Date;
}

/** An object's body, possibly a range of it. */
export interface GetResult extends ObjectInfo {
  body: ReadableStream<Uint8Array>;
  /** The range actually returned, always resolved to offset and length; absent for a full read. */
  range?: { offset: number; length: number };
}

export interface PutOptions {
  /** Hex SHA-256 of the body; the store refuses the body (BadDigestError) when it differs. */
  sha256?: string;
  /**
   * Conditional write, checked atomically by the store. `doesNotExist` (If-None-Match: *) lets
   * two writers race for one key; `etagMatches` (If-Match) is compare-and-swap.
   */
  onlyIf?: { doesNotExist?: true; etagMatches?: string };
}

export interface ListOptions {
  /** From a previous page's `cursor`. */
  cursor?: string;
  /** At most this many keys in this page (the store may return fewer). */
  limit?: number;
}

/** One page of a recursive listing: every key under the prefix, in lexicographic order. */
export interface ListResult {
  keys: string[];
  /** Present when more keys follow; pass it back to get the next page. */
  cursor?: string;
}

/** A stored part, as `complete` wants it back. */
export interface UploadedPart {
  partNumber: number;
  etag: string;
}

/**
 * An open multipart upload. R2's (and S3's) rules, which every driver enforces at `complete`:
 * part numbers 1..10,000 in ascending order; every part but the last has the same size and is at
 * least 5 MiB. Uploading a part number again replaces that part (its etag changes). Parts of an
 * incomplete upload cannot be read back.
 */
export interface MultipartUpload {
  readonly key: string;
  readonly uploadId: string;
  uploadPart(partNumber: number, body: Uint8Array | SizedStream): Promise<UploadedPart>;
  /** Assembles the parts into the object at `key`; the upload id is then gone. */
  complete(parts: UploadedPart[]): Promise<ObjectInfo>;
  /** Discards the parts. Aborting an unknown or finished upload is not an error. */
  abort(): Promise<void>;
}

export interface StorageDriver {
  /** Human-readable driver name for errors and logs ("r2", "memory", "s3"). */
  readonly name: string;
  /** Throws PathNotFoundError when absent, InvalidRangeError when the range starts past the end. */
  get(key: string, options?: { range?: ByteRange }): Promise<GetResult>;
  /** Throws PreconditionFailedError when `onlyIf` does not hold, BadDigestError on a sha256 mismatch. */
  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo>;
  /** Throws PathNotFoundError when absent. */
  stat(key: string): Promise<ObjectInfo>;
  /** Recursive listing of keys starting with `prefix` ("" lists everything). */
  list(prefix: string, options?: ListOptions): Promise<ListResult>;
  /** Deletes the keys that exist; absent keys are not an error (as S3 and R2). */
  delete(...keys: string[]): Promise<void>;
  createMultipart(key: string): Promise<MultipartUpload>;
  /**
   * A handle on an upload created earlier (possibly by another worker instance). Does not
   * check that the upload exists: the next call throws MultipartUnknownError if it does not.
   */
  resumeMultipart(key: string, uploadId: string): MultipartUpload;
  /**
   * Optional server-side copy (S3 CopyObject / UploadPartCopy); absent where the store has none,
   * as with the R2 binding. Throws PathNotFoundError when `from` is absent.
   */
  copy?(from: string, to: string): Promise<ObjectInfo>;
}

/** Base class of every error a wrapped driver throws. */
export class StorageError extends Error {
  constructor(
    message: string,
    /** The key (or prefix) the operation was about. */
    readonly path: string,
    /** The driver's name. */
    readonly driver: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The key does not exist (distribution's PathNotFoundError). */
export class PathNotFoundError extends StorageError {
  override readonly name = "PathNotFoundError";
  constructor(path: string, driver: string) {
    super(`${driver}: path not found: ${path}`, path, driver);
  }
}

/** The key is malformed (distribution's InvalidPathError); nothing was sent to the store. */
export class InvalidPathError extends StorageError {
  override readonly name = "InvalidPathError";
  constructor(
    path: string,
    driver: string,
    readonly reason: string,
  ) {
    super(`${driver}: invalid path ${JSON.stringify(path)}: ${reason}`, path, driver);
  }
}

/** A conditional put's condition did not hold; nothing was written. */
export class PreconditionFailedError extends StorageError {
  override readonly name = "PreconditionFailedError";
  constructor(path: string, driver: string) {
    super(`${driver}: precondition failed: ${path}`, path, driver);
  }
}

/** The body did not match the SHA-256 given to put; nothing was written. */
export class BadDigestError extends StorageError {
  override readonly name = "BadDigestError";
  constructor(path: string, driver: string, options?: { cause?: unknown }) {
    super(`${driver}: body does not match the given SHA-256: ${path}`, path, driver, options);
  }
}

/** A range starting at or past the end of the object (distribution's InvalidOffsetError). */
export class InvalidRangeError extends StorageError {
  override readonly name = "InvalidRangeError";
  constructor(
    path: string,
    driver: string,
    readonly range: ByteRange,
    options?: { cause?: unknown },
  ) {
    super(`${driver}: range not satisfiable: ${path} ${JSON.stringify(range)}`, path, driver, options);
  }
}

/** The multipart upload id is unknown: aborted, completed, expired or never created. */
export class MultipartUnknownError extends StorageError {
  override readonly name = "MultipartUnknownError";
  constructor(
    path: string,
    driver: string,
    readonly uploadId: string,
    options?: { cause?: unknown },
  ) {
    super(`${driver}: no such multipart upload ${uploadId} for ${path}`, path, driver, options);
  }
}

/**
 * `complete` was refused: a part is unknown or stale (wrong etag), parts are not ascending, or the
 * sizes break the equal-size / 5 MiB minimum rules (R2 errors 10025, 10048, 10011).
 */
export class InvalidPartError extends StorageError {
  override readonly name = "InvalidPartError";
  constructor(
    path: string,
    driver: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${driver}: invalid multipart parts for ${path}: ${reason}`, path, driver, options);
  }
}

/** Anything else the store threw, wrapped with the driver name (distribution's driver.Error). */
export class StorageDriverError extends StorageError {
  override readonly name = "StorageDriverError";
  constructor(path: string, driver: string, cause: unknown) {
    super(`${driver}: ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, path, driver, { cause });
  }
}

/**
 * The store failed in a way that may pass (throttling, a 5xx, a network error, a request that
 * timed out) and the driver's retries ran out. Nothing about the operation's effect is known
 * beyond what the driver says; the HTTP layer answers it 503 with `Retry-After` so clients retry,
 * instead of a 500 that suggests a bug or a 4xx that tells them to give up.
 */
export class StorageUnavailableError extends StorageError {
  override readonly name = "StorageUnavailableError";
  constructor(
    path: string,
    driver: string,
    /** Attempts made before giving up (1 when the request could not be retried). */
    readonly attempts: number,
    /** The store's own `Retry-After` hint in seconds, when it sent one. */
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(
      `${driver}: store unavailable for ${path} after ${attempts} attempt${attempts === 1 ? "" : "s"}${options?.cause instanceof Error ? `: ${options.cause.message}` : ""}`,
      path,
      driver,
      options,
    );
  }
}

/** R2's and S3's multipart limits, shared by the drivers and the writer. */
export const MULTIPART_LIMITS = {
  minPartSize: 5 * 1024 * 1024,
  maxParts: 10_000,
  /** S3's largest part; R2 allows about the same. */
  maxPartSize: 5 * 1024 * 1024 * 1024,
} as const;

/**
 * A range resolved against an object's size the way R2 does, for drivers that resolve it
 * themselves: the end clamped, a start at or past the end refused (but offset 0 of an empty
 * object, which gives nothing).
 */
export function resolveRange(key: string, driver: string, size: number, range: ByteRange): { offset: number; length: number } {
  if ("suffix" in range) {
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  if (range.offset >= size && !(size === 0 && range.offset === 0)) throw new InvalidRangeError(key, driver, range);
  const length = Math.min(range.length ?? size - range.offset, size - range.offset);
  return { offset: range.offset, length };
}
