/**
 * Errors of the upload writer (./writer.ts). Each carries the fields the HTTP layer needs to
 * answer (tus status codes in the comments); storage failures arrive as the StorageError family
 * of edge/storage/driver.ts instead.
 */
import type { Sha256Digest } from "../../shared/digest.ts";

/** No upload with this namespace and id in storage (404; or 410 when the caller knows it expired). */
export class UploadUnknownError extends Error {
  override readonly name = "UploadUnknownError";
  constructor(
    readonly namespace: string,
    readonly id: string,
  ) {
    super(`upload ${id} unknown in ${namespace}`);
  }
}

/** createUploadWriter for an id whose upload record already exists. */
export class UploadExistsError extends Error {
  override readonly name = "UploadExistsError";
  constructor(
    readonly namespace: string,
    readonly id: string,
  ) {
    super(`upload ${id} already exists in ${namespace}`);
  }
}

/** A digest declared for an upload that already has a different one (400 DIGEST_MALFORMED: the client contradicts itself). */
export class DigestConflictError extends Error {
  override readonly name = "DigestConflictError";
  constructor(
    readonly declared: Sha256Digest,
    readonly given: Sha256Digest,
  ) {
    super(`digest ${given} differs from the one already declared, ${declared}`);
  }
}

/** The whole upload's SHA-256 is not the one declared (400 DIGEST_INVALID). */
export class DigestMismatchError extends Error {
  override readonly name = "DigestMismatchError";
  constructor(
    readonly expected: Sha256Digest,
    readonly actual: Sha256Digest,
  ) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** A request body's tus Upload-Checksum did not match (460); nothing of the body was kept. */
export class ChecksumMismatchError extends Error {
  override readonly name = "ChecksumMismatchError";
  constructor(
    readonly algorithm: "sha1" | "sha256",
    readonly expected: Uint8Array,
    readonly actual: Uint8Array,
  ) {
    super(`${algorithm} checksum of the request body does not match`);
  }
}

/**
 * A body went past `limit` bytes (413): past `maxBytes` ("maxBytes") or past the upload's
 * declared length ("length"). Non-transactional writes keep and commit the bytes up to the
 * limit before throwing; transactional writes keep nothing.
 */
export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
  constructor(
    readonly limit: number,
    readonly reason: "maxBytes" | "length",
  ) {
    super(reason === "length" ? `body goes past the upload length (${limit} bytes left)` : `body larger than ${limit} bytes`);
  }
}

/** An upload longer than the store can hold at this part size (10,000 parts). */
export class UploadTooLargeError extends Error {
  override readonly name = "UploadTooLargeError";
  constructor(
    readonly length: number,
    readonly max: number,
  ) {
    super(`upload length ${length} exceeds ${max} bytes`);
  }
}

/** finish() before every byte arrived (offset < length). */
export class UploadIncompleteError extends Error {
  override readonly name = "UploadIncompleteError";
  constructor(
    readonly offset: number,
    readonly length: number,
  ) {
    super(`upload incomplete: ${offset} of ${length} bytes`);
  }
}

/** The writer was finished or cancelled; make a new one with resumeUploadWriter if needed. */
export class WriterClosedError extends Error {
  override readonly name = "WriterClosedError";
  constructor(readonly id: string) {
    super(`upload writer ${id} is closed`);
  }
}

/**
 * The saved hasher state is missing or from another hash-wasm build, and the data cannot be
 * re-read without first completing the multipart upload at its blob path, which would put
 * unverified bytes there. The upload cannot be finished; cancel it and start again.
 */
export class HashStateUnavailableError extends Error {
  override readonly name = "HashStateUnavailableError";
  constructor(readonly id: string) {
    super(`upload ${id}: no usable hasher state, and its data cannot be verified before it reaches the blob path`);
  }
}

/** The assembled data stayed invisible or of the wrong size through every validation retry. */
export class UploadDataUnavailableError extends Error {
  override readonly name = "UploadDataUnavailableError";
  constructor(
    readonly key: string,
    readonly attempts: number,
    readonly reason: string,
  ) {
    super(`${key}: ${reason} after ${attempts} attempts`);
  }
}

/**
 * The upload's record changed under this writer (it resumed from a stale read, or another writer
 * committed meanwhile): nothing was written; resume from storage and try again (503).
 */
export class UploadChangedError extends Error {
  override readonly name = "UploadChangedError";
  constructor(readonly id: string) {
    super(`upload ${id}: its record changed under this writer; resume from storage`);
  }
}

/**
 * The store answered an older state of the upload than its object knows was committed: `info`
 * read at offset `read`, below `committed` (or not at all), a stale read of an eventually
 * consistent store. It will catch up: 503, never 404 or an offset that moves a client back.
 */
export class StaleUploadReadError extends Error {
  override readonly name = "StaleUploadReadError";
  constructor(
    readonly id: string,
    readonly committed: number,
    readonly read: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(`upload ${id}: the store answered ${read === undefined ? "no record" : `offset ${read}`}, below the committed ${committed}`, options);
  }
}
