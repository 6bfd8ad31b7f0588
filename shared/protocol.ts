/**
 * The HTTP contract both sides speak (tus 1.0 plus RFC 9530 digests): header names, the
 * extensions the edge implements, defaults, and the error body. See ../README.md "HTTP API".
 */

export const TUS_VERSION = "1.0.0";
export const TUS_EXTENSIONS = ["creation", "creation-with-upload", "expiration", "checksum", "termination"] as const;
export const TUS_CHECKSUM_ALGORITHMS = ["sha1", "sha256"] as const;
export type TusChecksumAlgorithm = (typeof TUS_CHECKSUM_ALGORITHMS)[number];

export const OFFSET_OCTET_STREAM = "application/offset+octet-stream";

/** Header names, lower-case as the Fetch API hands them out. */
export const H = {
  tusResumable: "tus-resumable",
  uploadLength: "upload-length",
  uploadOffset: "upload-offset",
  uploadMetadata: "upload-metadata",
  uploadChecksum: "upload-checksum",
  uploadDeferLength: "upload-defer-length",
  reprDigest: "repr-digest",
  contentLocation: "content-location",
  /** Ours: the edge's storage part size; client chunk sizes should be multiples of it. */
  uploadPartSize: "upload-part-size",
  /** Ours: the largest PATCH body the edge accepts (well under the Workers 100 MB request limit). */
  uploadMaxChunkSize: "upload-max-chunk-size",
  /** Ours, on a finished upload's answers: a signed, expiring link to its blob that needs no Authorization. */
  uploadBlobUrl: "upload-blob-url",
} as const;

const MiB = 1024 * 1024;

/** Defaults; each is configurable on the edge (wrangler vars) and advertised to clients. */
export const DEFAULTS = {
  /** R2 multipart part size: every part but the last has exactly this size. */
  partSize: 8 * MiB,
  /** R2's (and S3's) smallest non-final part. */
  minPartSize: 5 * MiB,
  /** Largest PATCH body: 64 MiB, well under the 100 MB Workers request body limit. */
  maxPatchSize: 64 * MiB,
  /** Largest upload: R2 allows 10,000 parts; 10,000 x 8 MiB ~ 78 GiB, advertised as 64 GiB. */
  maxUploadSize: 64 * 1024 * MiB,
  /** An upload expires this long after its last write (like R2's own multipart expiry). */
  uploadTtlSeconds: 7 * 24 * 3600,
  /** A PATCH body idle this long is cut off on the edge, keeping what arrived. */
  bodyIdleTimeoutSeconds: 30,
  /** Client chunk size: a multiple of the part size. */
  chunkSize: 32 * MiB,
} as const;

/** The error body of every non-2xx answer. */
export interface ErrorBody {
  code: string;
  message: string;
  /** Extra fields for some codes, for example DIGEST_INVALID's expected and actual digests. */
  [detail: string]: unknown;
}

/** Error codes the edge answers with. */
export type ErrorCode =
  | "TUS_VERSION_UNSUPPORTED" // 412
  | "CONTENT_TYPE_INVALID" // 415
  | "OFFSET_MISMATCH" // 409
  | "UPLOAD_TOO_LARGE" // 413
  | "UPLOAD_UNKNOWN" // 404
  | "UPLOAD_EXPIRED" // 410
  | "UPLOAD_LENGTH_INVALID" // 400
  | "METADATA_INVALID" // 400
  | "DIGEST_INVALID" // 400 (mismatch, expected/actual attached)
  | "DIGEST_MALFORMED" // 400
  | "CHECKSUM_MISMATCH" // 460
  | "CHECKSUM_UNSUPPORTED" // 400
  | "BLOB_UNKNOWN" // 404
  | "UNAUTHORIZED" // 401
  | "NOT_CONFIGURED" // 503
  | "BAD_REQUEST" // 400
  | "INTERNAL"; // 500

/** Parses tus `Upload-Metadata` (`key base64,key2 base64`); undefined when malformed. */
export function parseUploadMetadata(header: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (header.trim() === "") return out;
  for (const pair of header.split(",")) {
    const parts = pair.trim().split(" ");
    const [key, value] = parts;
    if (!key || parts.length > 2 || !/^[\x21-\x7e]+$/.test(key) || key in out) return undefined;
    if (value === undefined || value === "") {
      out[key] = "";
      continue;
    }
    if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined;
    try {
      const bin = atob(value);
      out[key] = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    } catch {
      return undefined;
    }
  }
  return out;
}

/** Formats tus `Upload-Metadata` from string values (UTF-8, base64). */
export function formatUploadMetadata(meta: Record<string, string>): string {
  return Object.entries(meta)
    .map(([k, v]) => {
      const bytes = new TextEncoder().encode(v);
      let bin = "";
      for (const b of bytes) bin += String.fromCharCode(b);
      return v === "" ? k : `${k} ${btoa(bin)}`;
    })
    .join(",");
}

/**
 * Error codes beyond ErrorCode that the edge also answers with (appended so the list above stays
 * as the client already reads it).
 */
export type EdgeErrorCode =
  | ErrorCode
  | "CONFIG_INVALID" // 500: a wrangler var does not parse; the message names it
  | "NOT_FOUND" // 404: no such route
  | "METHOD_NOT_ALLOWED" // 405
  | "STORAGE_UNAVAILABLE" // 503 + Retry-After: the store failed or timed out; nothing lost, retry
  | "UPLOAD_EXISTS" // 409: a creation for an upload id that already has a record
  | "UPLOAD_RESTART_REQUIRED" // 410: the server can no longer verify this upload's bytes; start it again
  | "BODY_INCOMPLETE" // 400: the request body broke off or stalled; HEAD for the committed offset
  | "RATE_LIMITED" // 429 + Retry-After: a namespace limit (open uploads or bytes) is reached
  | "FORBIDDEN"; // 403: a signed blob link that is tampered, expired or not for this blob

/** Our headers that a cross-origin page must be able to read (Access-Control-Expose-Headers). */
export const EXPOSED_HEADERS = [
  "Tus-Resumable",
  "Tus-Version",
  "Tus-Extension",
  "Tus-Max-Size",
  "Tus-Checksum-Algorithm",
  "Upload-Offset",
  "Upload-Length",
  "Upload-Metadata",
  "Upload-Expires",
  "Location",
  "Repr-Digest",
  "Content-Location",
  "Upload-Part-Size",
  "Upload-Max-Chunk-Size",
  "ETag",
  "Content-Range",
  "WWW-Authenticate",
  "Retry-After",
  "Upload-Blob-Url",
] as const;

/** Request headers a cross-origin page may send (Access-Control-Allow-Headers). */
export const ALLOWED_REQUEST_HEADERS = [
  "Authorization",
  "Content-Type",
  "Tus-Resumable",
  "Upload-Offset",
  "Upload-Length",
  "Upload-Metadata",
  "Upload-Checksum",
  "Upload-Defer-Length",
  "Upload-Concat",
  "Repr-Digest",
  "Range",
  "X-HTTP-Method-Override",
  "X-Requested-With",
] as const;

/** Upload tokens: `base64url(JSON TokenPayload) + "." + base64url(HMAC-SHA256(secret, first part))`. */
export interface TokenPayload {
  /** The namespace (Docker repository name) the bearer uploads into and reads from. */
  ns: string;
  /** Expiry, seconds since the Unix epoch. */
  exp: number;
}
