/**
 * S3 error responses turned into the storage layer's typed errors (./driver.ts). An S3 error is
 * an XML body `<Error><Code>NoSuchKey</Code><Message>...</Message><RequestId>...</RequestId>`
 * (HEAD responses have no body: only the status says what happened). The store's own words are
 * kept in an S3ResponseError, the `cause` of every error this file makes, so a log shows the code,
 * status and request id a store's support team asks for.
 */
import {
  BadDigestError,
  InvalidPartError,
  InvalidRangeError,
  MultipartUnknownError,
  PathNotFoundError,
  PreconditionFailedError,
  StorageError,
  type ByteRange,
} from "./driver.ts";
import { child, parseXml, text, type XmlElement } from "./s3-xml.ts";

/** What an S3-compatible store answered; the `cause` of the typed errors below. */
export class S3ResponseError extends Error {
  override readonly name = "S3ResponseError";
  constructor(
    /** The S3 operation, e.g. "PutObject". */
    readonly operation: string,
    /** S3's error code (e.g. "NoSuchKey"); for a body-less response, one derived from the status. */
    readonly code: string,
    readonly status: number,
    /** x-amz-request-id (or the body's RequestId), when the store sent one. */
    readonly requestId: string | undefined,
    message: string,
  ) {
    super(`${operation}: ${status} ${code}: ${message}${requestId ? ` (request id ${requestId})` : ""}`);
  }
}

/** Base of the S3-specific errors below: the store's code, status and request id, kept as fields. */
export abstract class S3StorageError extends StorageError {
  readonly code: string;
  readonly status: number;
  readonly requestId: string | undefined;
  constructor(message: string, path: string, driver: string, cause: S3ResponseError) {
    super(message, path, driver, { cause });
    this.code = cause.code;
    this.status = cause.status;
    this.requestId = cause.requestId;
  }
}

/**
 * The store refused the credentials: unknown access key id, wrong secret (signature), denied by
 * policy, expired session token, or a signature for the wrong region.
 */
export class S3CredentialsError extends S3StorageError {
  override readonly name = "S3CredentialsError";
  constructor(path: string, driver: string, cause: S3ResponseError, endpoint: string) {
    super(
      `${driver}: ${endpoint} refused the credentials (${cause.code}, HTTP ${cause.status}): check S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and S3_REGION, and that the key may read and write the bucket${cause.requestId ? ` (request id ${cause.requestId})` : ""}`,
      path,
      driver,
      cause,
    );
  }
}

/** The bucket does not exist at that endpoint (or not under that name). */
export class S3BucketNotFoundError extends S3StorageError {
  override readonly name = "S3BucketNotFoundError";
  constructor(
    path: string,
    driver: string,
    cause: S3ResponseError,
    readonly bucket: string,
    endpoint: string,
  ) {
    super(
      `${driver}: bucket ${JSON.stringify(bucket)} does not exist at ${endpoint}: create it, or fix S3_BUCKET / S3_ENDPOINT${cause.requestId ? ` (request id ${cause.requestId})` : ""}`,
      path,
      driver,
      cause,
    );
  }
}

/** Any other error response (throttling, internal errors, unsupported features...). */
export class S3RequestError extends S3StorageError {
  override readonly name = "S3RequestError";
  readonly operation: string;
  constructor(path: string, driver: string, cause: S3ResponseError) {
    super(`${driver}: ${path}: ${cause.message}`, path, driver, cause);
    this.operation = cause.operation;
  }
}

/** Codes meaning "these credentials may not do this" (AWS, R2, MinIO spell them alike). */
const CREDENTIAL_CODES = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "AccessDenied",
  "InvalidToken",
  "ExpiredToken",
  "TokenRefreshRequired",
  "AuthorizationHeaderMalformed",
  "InvalidSecurity",
  "AllAccessDisabled",
  "AccountProblem",
  "Unauthorized",
  "Forbidden",
]);

/** Codes for a body-less response (HEAD), from its status. */
const STATUS_CODES: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  409: "Conflict",
  412: "PreconditionFailed",
  416: "InvalidRange",
};

/** Reads a failed response (or a 200 whose body is an `<Error>`, as CopyObject may send). */
export async function readS3Error(operation: string, response: Response, body?: XmlElement): Promise<S3ResponseError> {
  const xml = body ?? parseXml(await response.text().catch(() => ""));
  const error = child(xml, "Error");
  const code = text(error, "Code") ?? response.headers.get("x-amz-error-code") ?? STATUS_CODES[response.status] ?? `HTTP${response.status}`;
  const message = text(error, "Message") ?? response.headers.get("x-amz-error-message") ?? (response.statusText || "no message");
  const requestId = response.headers.get("x-amz-request-id") ?? text(error, "RequestId") ?? undefined;
  return new S3ResponseError(operation, code, response.status, requestId || undefined, message);
}

/** What the mapping needs to know about the call that failed. */
export interface S3ErrorContext {
  driver: string;
  endpoint: string;
  bucket: string;
  /** The key (or prefix) the call was about. */
  path: string;
  range?: ByteRange;
  uploadId?: string;
  /** A conditional put: a missing object means the condition failed (AWS answers If-Match on a missing key with 404). */
  conditional?: boolean;
}

/** The typed error for an S3 error response. */
export function s3Failure(err: S3ResponseError, ctx: S3ErrorContext): StorageError {
  const { driver, path } = ctx;
  const withCause = <E extends StorageError>(e: E): E => {
    // PathNotFoundError and PreconditionFailedError take no `cause` argument; attach it the same way.
    if (e.cause === undefined) Object.defineProperty(e, "cause", { value: err, enumerable: false, writable: true, configurable: true });
    return e;
  };
  if (err.code === "NoSuchBucket") return new S3BucketNotFoundError(path, driver, err, ctx.bucket, ctx.endpoint);
  if (CREDENTIAL_CODES.has(err.code) || err.status === 401 || (err.status === 403 && err.code === "Forbidden")) {
    return new S3CredentialsError(path, driver, err, ctx.endpoint);
  }
  switch (err.code) {
    case "NoSuchKey":
    case "NotFound":
      if (ctx.conditional) return withCause(new PreconditionFailedError(path, driver));
      return withCause(new PathNotFoundError(path, driver));
    case "NoSuchUpload":
      return new MultipartUnknownError(path, driver, ctx.uploadId ?? "", { cause: err });
    case "InvalidPart":
      return new InvalidPartError(path, driver, "a part is unknown or its etag is stale", { cause: err });
    case "InvalidPartOrder":
      return new InvalidPartError(path, driver, "part numbers must be ascending", { cause: err });
    case "EntityTooSmall":
      return new InvalidPartError(path, driver, "a part other than the last is smaller than 5 MiB", { cause: err });
    case "PreconditionFailed":
    case "ConditionalRequestConflict":
      return withCause(new PreconditionFailedError(path, driver));
    case "BadDigest":
    case "XAmzContentSHA256Mismatch":
    case "InvalidDigest":
      return new BadDigestError(path, driver, { cause: err });
    case "InvalidRange":
      if (ctx.range) return new InvalidRangeError(path, driver, ctx.range, { cause: err });
      break;
  }
  return new S3RequestError(path, driver, err);
}

/**
 * S3 codes that may pass when the same request is sent again (AWS's retry guidance; R2's S3
 * endpoint and MinIO use the same codes): throttling, internal errors, a busy or timed-out
 * connection, a conditional write racing another one in flight.
 */
const TRANSIENT_CODES = new Set([
  "SlowDown",
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeoutException",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestLimitExceeded",
  "TooManyRequests",
  "BandwidthLimitExceeded",
  "OperationAborted",
  "PriorRequestNotComplete",
  "EC2ThrottledException",
]);

/** Statuses that are transient whatever the code says (a proxy in front of the store may send them without one). */
const TRANSIENT_STATUSES = new Set([429, 500, 502, 503, 504]);

/** Whether an S3 error response may pass if the request is sent again. */
export function isTransientS3(err: S3ResponseError): boolean {
  return TRANSIENT_CODES.has(err.code) || TRANSIENT_STATUSES.has(err.status);
}

/**
 * Whether the store may have carried the request out although it answered this error. Throttling
 * (SlowDown, 503, 429) and RequestTimeout (the store did not receive the whole body) are refused
 * before any effect; a 500/502/504 or an InternalError may come after the write took effect, as
 * may a 200 whose body is an `<Error>` (CopyObject and CompleteMultipartUpload send one when they
 * fail after answering 200).
 */
export function mayHaveTakenEffect(err: S3ResponseError): boolean {
  if (err.status === 200) return true;
  if (err.status === 429 || err.status === 503 || err.code === "SlowDown" || err.code === "RequestTimeout") return false;
  return err.status >= 500 || err.code === "InternalError";
}
