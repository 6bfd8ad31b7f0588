/**
 * Reading a tus request's headers (and its body's framing) into what the upload session takes,
 * checked before a byte of the body is read. Each malformed header is its own 4xx.
 */
import type { Context } from "hono";
import { base64ToBytes, parseReprDigest, type Sha256Digest } from "../../shared/digest.ts";
import { H, OFFSET_OCTET_STREAM, TUS_CHECKSUM_ALGORITHMS, type TusChecksumAlgorithm } from "../../shared/protocol.ts";
import type { EdgeConfig } from "../config.ts";
import type { WriteRequest } from "../upload/session.ts";
import type { AppEnv } from "./app.ts";
import { ApiError } from "./errors.ts";

export function parseLength(raw: string | undefined, config: EdgeConfig): number {
  if (raw === undefined) throw new ApiError(400, "UPLOAD_LENGTH_INVALID", "Upload-Length header required");
  if (!/^\d+$/.test(raw.trim())) throw new ApiError(400, "UPLOAD_LENGTH_INVALID", "Upload-Length must be a non-negative integer");
  const length = Number(raw.trim());
  if (!Number.isSafeInteger(length) || length > config.maxUploadSize) {
    throw new ApiError(413, "UPLOAD_TOO_LARGE", `Upload-Length exceeds Tus-Max-Size ${config.maxUploadSize}`, {
      headers: { "Tus-Max-Size": String(config.maxUploadSize) },
    });
  }
  return length;
}

export function parseReprDigestHeader(raw: string | undefined): Sha256Digest | undefined {
  if (raw === undefined) return undefined;
  const digest = parseReprDigest(raw);
  if (digest === null) throw new ApiError(400, "DIGEST_MALFORMED", "Repr-Digest must carry sha-256=:<base64 of 32 bytes>:");
  return digest;
}

export function mergeDigest(a: Sha256Digest | undefined, b: Sha256Digest | undefined): Sha256Digest | undefined {
  if (a && b && a !== b) throw new ApiError(400, "DIGEST_MALFORMED", "metadata digest and Repr-Digest disagree");
  return a ?? b;
}

/** tus checksum extension: `Upload-Checksum: <sha1|sha256> <base64>`. */
function parseChecksum(raw: string | undefined): WriteRequest["checksum"] {
  if (raw === undefined) return undefined;
  const [algorithm, value, extra] = raw.trim().split(/ +/);
  if (!(TUS_CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm?.toLowerCase() ?? "")) {
    throw new ApiError(400, "CHECKSUM_UNSUPPORTED", `Upload-Checksum algorithm must be one of ${TUS_CHECKSUM_ALGORITHMS.join(", ")}`);
  }
  const alg = algorithm!.toLowerCase() as TusChecksumAlgorithm;
  const expected = value !== undefined && extra === undefined ? base64ToBytes(value) : undefined;
  if (!expected || expected.length !== (alg === "sha1" ? 20 : 32)) {
    throw new ApiError(400, "CHECKSUM_UNSUPPORTED", "Upload-Checksum value must be the base64 of the digest");
  }
  return { algorithm: alg, expected };
}

/**
 * The body part of a PATCH (or creation-with-upload POST), checked before a byte is read:
 * content type, Content-Length against the maximum chunk (413), Upload-Checksum syntax.
 * Returns undefined when there is no body.
 */
export async function bodyRequest(c: Context<AppEnv>, length: number | undefined, offset: number, creation: boolean): Promise<WriteRequest | undefined> {
  const config = c.get("config");
  const rawLength = c.req.header("content-length");
  let contentLength: number | null = null;
  if (rawLength !== undefined) {
    if (!/^\d+$/.test(rawLength)) throw new ApiError(400, "BAD_REQUEST", "Content-Length invalid");
    contentLength = Number(rawLength);
  }
  const body = c.req.raw.body;
  if (creation) {
    if (!body || contentLength === 0) return undefined;
    const contentType = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
    if (contentType !== OFFSET_OCTET_STREAM) {
      throw new ApiError(415, "CONTENT_TYPE_INVALID", `a creation-with-upload body needs Content-Type: ${OFFSET_OCTET_STREAM}`);
    }
  }
  if (contentLength !== null && contentLength > config.maxPatchSize) {
    throw new ApiError(413, "UPLOAD_TOO_LARGE", `request body over Upload-Max-Chunk-Size ${config.maxPatchSize}; send smaller chunks`, {
      headers: { "Upload-Max-Chunk-Size": String(config.maxPatchSize) },
    });
  }
  if (length !== undefined && contentLength !== null && contentLength > length - offset) {
    throw new ApiError(413, "UPLOAD_TOO_LARGE", `request body of ${contentLength} bytes exceeds the ${length - offset} bytes left of Upload-Length`);
  }
  const checksum = parseChecksum(c.req.header(H.uploadChecksum));
  if (!body) return { offset, contentLength: 0, body: null, ...(checksum ? { checksum } : {}) };
  return { offset, contentLength, body, ...(checksum ? { checksum } : {}) };
}
