/**
 * The edge's one error type. Handlers throw it; the single `onError` in app.ts turns it into
 * the contract's JSON body `{ code, message, ...details }` with its status and headers, so no
 * route builds an error response by hand and every error answer looks the same.
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { EdgeErrorCode, ErrorBody } from "../../shared/protocol.ts";
import { InvalidPathError, StorageError } from "../storage/driver.ts";
import {
  BodyTooLargeError,
  ChecksumMismatchError,
  DigestConflictError,
  DigestMismatchError,
  HashStateUnavailableError,
  StaleUploadReadError,
  UploadChangedError,
  UploadDataUnavailableError,
  UploadTooLargeError,
  UploadUnknownError,
  WriterClosedError,
} from "../writer/errors.ts";
import { BodyReadError } from "../writer/body-chunks.ts";

/** What crosses the Durable Object RPC boundary: Errors lose their fields there, plain data does not. */
export interface ApiErrorData {
  status: ContentfulStatusCode;
  code: EdgeErrorCode;
  message: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An HTTPException that knows its contract error code, extra body fields and headers. */
export class ApiError extends HTTPException {
  override readonly status: ContentfulStatusCode;
  readonly code: EdgeErrorCode;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: EdgeErrorCode,
    message: string,
    extra: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(status, { message, cause: extra.cause });
    this.status = status;
    this.code = code;
    this.details = extra.details ?? {};
    this.headers = extra.headers ?? {};
  }

  /** Plain data, for returning an error from the Durable Object. */
  toData(): ApiErrorData {
    return { status: this.status, code: this.code, message: this.message, details: this.details, headers: this.headers };
  }

  static fromData(data: ApiErrorData): ApiError {
    return new ApiError(data.status, data.code, data.message, {
      ...(data.details ? { details: data.details } : {}),
      ...(data.headers ? { headers: data.headers } : {}),
    });
  }

  /** The response the one onError sends. */
  override getResponse(): Response {
    const body: ErrorBody = { ...this.details, code: this.code, message: this.message };
    const headers = new Headers(this.headers);
    headers.set("content-type", "application/json; charset=utf-8");
    return new Response(JSON.stringify(body), { status: this.status, headers });
  }
}

/** Result of a Durable Object call: errors travel as data so their status and code survive RPC. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ApiErrorData };

/** Unwraps an Outcome on the Worker side, rethrowing its error as an ApiError. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw ApiError.fromData(outcome.error);
}

/** Seconds a client is told to wait after a store fault before it tries again. */
export const STORE_RETRY_AFTER_SECONDS = 2;

/**
 * The ONE mapping from what the writer, the storage drivers and the request body throw to the
 * HTTP answer. The rule it enforces: a fault of the server or the store is never a 4xx (tus
 * clients give up on a 4xx, so one flaky store call would end an upload): store faults are 503
 * with Retry-After, anything unexpected 500. Only what the client sent wrong is a 4xx.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof BodyReadError) {
    return new ApiError(400, "BODY_INCOMPLETE", "request body ended early or stalled; HEAD for the committed offset and resume", { cause: err });
  }
  if (err instanceof ChecksumMismatchError) {
    return new ApiError(460 as ContentfulStatusCode, "CHECKSUM_MISMATCH", "Upload-Checksum does not match the body; nothing kept");
  }
  if (err instanceof BodyTooLargeError) {
    const message = err.reason === "length" ? `request body exceeds the ${err.limit} bytes left of Upload-Length` : `request body over ${err.limit} bytes`;
    return new ApiError(413, "UPLOAD_TOO_LARGE", message);
  }
  if (err instanceof UploadTooLargeError) return new ApiError(413, "UPLOAD_TOO_LARGE", `Upload-Length over ${err.max} bytes (10,000 parts)`);
  if (err instanceof UploadUnknownError) return new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
  if (err instanceof DigestMismatchError) {
    return new ApiError(400, "DIGEST_INVALID", `upload digest ${err.actual} does not match the declared ${err.expected}`, {
      details: { expected: err.expected, actual: err.actual },
    });
  }
  if (err instanceof DigestConflictError) return new ApiError(400, "DIGEST_MALFORMED", err.message);
  if (err instanceof HashStateUnavailableError) {
    return new ApiError(410, "UPLOAD_RESTART_REQUIRED", "the server can no longer verify this upload's bytes; it was removed: start the upload again");
  }
  if (err instanceof StorageError && !(err instanceof InvalidPathError)) {
    return unavailable("STORAGE_UNAVAILABLE", "the storage failed or timed out; nothing was lost: retry", err);
  }
  if (err instanceof StaleUploadReadError) {
    const what = err.read === undefined ? "not readable" : `read at offset ${err.read}, below the committed ${err.committed},`;
    return unavailable("STORAGE_UNAVAILABLE", `the upload's data is ${what} in the store right now; nothing was lost: retry`, err);
  }
  if (err instanceof WriterClosedError || err instanceof UploadDataUnavailableError || err instanceof UploadChangedError) {
    return unavailable("STORAGE_UNAVAILABLE", "the upload's data is not readable yet; nothing was lost: retry", err);
  }
  return new ApiError(500, "INTERNAL", "internal error", { cause: err });
}

function unavailable(code: EdgeErrorCode, message: string, cause: unknown): ApiError {
  const hinted = (cause as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  const seconds = typeof hinted === "number" && Number.isFinite(hinted) && hinted > 0 ? Math.ceil(hinted) : STORE_RETRY_AFTER_SECONDS;
  return new ApiError(503, code, message, { cause, headers: { "Retry-After": String(seconds) } });
}
