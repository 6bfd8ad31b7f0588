/**
 * The driver over the S3 REST API, for AWS S3, R2's S3 endpoint, MinIO, Backblaze B2 and other
 * S3-compatible stores, from inside workerd. Requests are signed with aws4fetch (SigV4); no
 * signing here. Bodies are streamed with their length known (FixedLengthStream), never buffered.
 *
 * Where S3 is laxer than the interface (./driver.ts), the driver enforces the interface, so the
 * writer behaves the same on every store:
 * - CompleteMultipartUpload is preceded by ListParts, and R2's rules are checked on what the store
 *   holds: known parts with their current ETags, ascending, every part but the last of one size
 *   and at least 5 MiB (S3 itself allows unequal parts; R2's S3 endpoint does not);
 * - a `sha256` given to put is sent as the signed payload hash (x-amz-content-sha256), which every
 *   SigV4 store checks while receiving the body: a mismatch stores nothing (BadDigestError);
 * - `copy` is server-side: CopyObject up to 5 GiB (its limit), above that a multipart upload of
 *   UploadPartCopy ranges, so the move at finish sends no blob bytes through the worker.
 * No object tagging headers are sent (R2 rejects them; @tus/s3-store #538).
 */
import { AwsClient } from "aws4fetch";
import { withKeyValidation } from "./base.ts";
import {
  InvalidPartError,
  InvalidRangeError,
  MULTIPART_LIMITS,
  MultipartUnknownError,
  type ByteRange,
  type GetResult,
  type MultipartUpload,
  type ObjectInfo,
  type PutBody,
  type SizedStream,
  type StorageDriver,
  type UploadedPart,
} from "./driver.ts";
import { readS3Error, s3Failure, S3RequestError, S3ResponseError, type S3ErrorContext } from "./s3-errors.ts";
import { buildXml, child, children, parseXml, text, type XmlElement } from "./s3-xml.ts";

export { S3BucketNotFoundError, S3CredentialsError, S3RequestError, S3ResponseError } from "./s3-errors.ts";

const NAME = "s3";
const GiB = 1024 * 1024 * 1024;
/** CopyObject copies at most 5 GiB in one request. */
const MAX_COPY_OBJECT_SIZE = 5 * GiB;
const DEFAULT_COPY_PART_SIZE = 512 * 1024 * 1024;
const COPY_CONCURRENCY = 4;

export interface S3DriverOptions {
  /**
   * The store's endpoint, without the bucket: `https://s3.us-east-1.amazonaws.com`,
   * `https://<account id>.r2.cloudflarestorage.com`, `http://127.0.0.1:9000`.
   */
  endpoint: string;
  /** SigV4 region: the bucket's region on AWS, "auto" on R2, anything the server accepts locally. */
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials' session token (AWS STS). */
  sessionToken?: string;
  /**
   * Address the bucket as `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint host>/<key>`.
   * Default: true for an IP address or localhost (local servers), false otherwise.
   */
  forcePathStyle?: boolean;
  /** The fetch to send signed requests with (tests wrap it to count bytes). */
  fetch?: (request: Request) => Promise<Response>;
  /** Objects larger than this are copied part by part with UploadPartCopy (default and maximum 5 GiB). */
  multipartCopyThreshold?: number;
  /** Part size of such a copy (default 512 MiB, grown when 10,000 parts would not suffice). */
  copyPartSize?: number;
  /** Attempts after the first for requests whose body can be sent again, on 429/5xx or a network error (default 2). */
  retries?: number;
}

/** One prepared request body: bytes, or a stream of known length (sent once, never retried). */
type Payload = { bytes: Uint8Array; length: number } | { stream: ReadableStream<Uint8Array>; length: number };

/** A driver over one bucket of an S3-compatible store, behind the key-validating wrapper. */
export function createS3Driver(options: S3DriverOptions): StorageDriver {
  const endpoint = parseEndpoint(options.endpoint);
  const { bucket, region } = options;
  if (!bucket) throw new TypeError("createS3Driver: bucket is required");
  if (!region) throw new TypeError("createS3Driver: region is required");
  if (!options.accessKeyId || !options.secretAccessKey) throw new TypeError("createS3Driver: accessKeyId and secretAccessKey are required");
  const pathStyle = options.forcePathStyle ?? isLocalHost(endpoint.hostname);
  const copyThreshold = Math.min(options.multipartCopyThreshold ?? MAX_COPY_OBJECT_SIZE, MAX_COPY_OBJECT_SIZE);
  const copyPartSize = options.copyPartSize ?? DEFAULT_COPY_PART_SIZE;
  if (copyPartSize < MULTIPART_LIMITS.minPartSize || copyPartSize > MULTIPART_LIMITS.maxPartSize) {
    throw new RangeError(`createS3Driver: copyPartSize must be from ${MULTIPART_LIMITS.minPartSize} to ${MULTIPART_LIMITS.maxPartSize}`);
  }
  const retries = options.retries ?? 2;
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const client = new AwsClient({
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
    service: "s3",
    region,
    retries: 0, // retried below, and only when the body can be sent again
  });
  const origin = pathStyle ? `${endpoint.origin}/${encodeURIComponent(bucket)}` : `${endpoint.protocol}//${bucket}.${endpoint.host}`;
  const where = `${endpoint.origin} (bucket ${bucket})`;

  const url = (key: string | undefined, query: Record<string, string | number | undefined> = {}): string => {
    const path = key === undefined ? (pathStyle ? "" : "/") : `/${key.split("/").map(encodeURIComponent).join("/")}`;
    const search = Object.entries(query)
      .filter((e): e is [string, string | number] => e[1] !== undefined)
      .map(([k, v]) => (v === "" ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`))
      .join("&");
    return `${origin}${path}${search ? `?${search}` : ""}`;
  };

  interface Call {
    operation: string;
    method: string;
    url: string;
    /** For errors: the key or prefix, the range, the upload id. */
    context: Omit<S3ErrorContext, "driver" | "endpoint" | "bucket">;
    headers?: Record<string, string>;
    body?: Payload;
  }

  /** Signs and sends; any error response becomes a typed error. */
  const request = async (call: Call): Promise<Response> => {
    const ctx: S3ErrorContext = { driver: NAME, endpoint: where, bucket, ...call.context };
    const headers: Record<string, string> = { ...call.headers };
    const replayable = !call.body || "bytes" in call.body;
    for (let attempt = 0; ; attempt++) {
      let body: BodyInit | undefined;
      if (call.body) {
        body = "bytes" in call.body ? (call.body.bytes as Uint8Array<ArrayBuffer>) : call.body.stream;
        // workerd sends the length of bytes or of a FixedLengthStream (./sizedPayload) by itself;
        // the header also tells a wrapping `fetch` option (byte counting in tests) the length.
        headers["content-length"] = String(call.body.length);
      }
      let response: Response;
      try {
        const signed = await client.sign(call.url, { method: call.method, headers, ...(body !== undefined ? { body } : {}) });
        response = await send(signed);
      } catch (err) {
        if (replayable && attempt < retries) {
          await backoff(attempt);
          continue;
        }
        throw new S3RequestError(call.context.path, NAME, new S3ResponseError(call.operation, "NetworkError", 0, undefined, String((err as Error)?.message ?? err)));
      }
      if (response.ok) return response;
      if (replayable && attempt < retries && (response.status === 429 || response.status >= 500)) {
        await response.body?.cancel();
        await backoff(attempt);
        continue;
      }
      throw s3Failure(await readS3Error(call.operation, response), ctx);
    }
  };

  /** For calls that may answer 200 with an `<Error>` body (CopyObject, UploadPartCopy, Complete). */
  const xmlResult = async (call: Call, response: Response): Promise<XmlElement> => {
    const xml = parseXml(await response.text());
    if (child(xml, "Error")) {
      throw s3Failure(await readS3Error(call.operation, response, xml), { driver: NAME, endpoint: where, bucket, ...call.context });
    }
    return xml;
  };

  const head = async (key: string): Promise<ObjectInfo> => {
    const response = await request({ operation: "HeadObject", method: "HEAD", url: url(key), context: { path: key } });
    return infoFrom(key, response.headers, Number(response.headers.get("content-length") ?? 0));
  };

  /** Every part the store holds for an upload (ListParts, paged). */
  const listParts = async (key: string, uploadId: string): Promise<Map<number, { etag: string; size: number }>> => {
    const parts = new Map<number, { etag: string; size: number }>();
    let marker: string | undefined;
    do {
      const response = await request({
        operation: "ListParts",
        method: "GET",
        url: url(key, { uploadId, "max-parts": 1000, "part-number-marker": marker }),
        context: { path: key, uploadId },
      });
      const result = child(parseXml(await response.text()), "ListPartsResult");
      for (const part of children(result, "Part")) {
        parts.set(Number(text(part, "PartNumber")), { etag: unquote(text(part, "ETag") ?? ""), size: Number(text(part, "Size")) });
      }
      marker = text(result, "IsTruncated") === "true" ? text(result, "NextPartNumberMarker") : undefined;
    } while (marker);
    return parts;
  };

  const handle = (key: string, uploadId: string): MultipartUpload => ({
    key,
    uploadId,
    async uploadPart(partNumber, body) {
      const response = await request({
        operation: "UploadPart",
        method: "PUT",
        url: url(key, { partNumber, uploadId }),
        context: { path: key, uploadId },
        body: payload(body),
      });
      return { partNumber, etag: unquote(response.headers.get("etag") ?? "") };
    },
    async complete(parts) {
      const stored = await listParts(key, uploadId);
      const size = checkParts(key, stored, parts);
      const call: Call = {
        operation: "CompleteMultipartUpload",
        method: "POST",
        url: url(key, { uploadId }),
        context: { path: key, uploadId },
        headers: { "content-type": "application/xml" },
        body: bytesPayload(
          buildXml({ CompleteMultipartUpload: { Part: parts.map((p) => ({ PartNumber: String(p.partNumber), ETag: `"${p.etag}"` })) } }),
        ),
      };
      const response = await request(call);
      const result = child(await xmlResult(call, response), "CompleteMultipartUploadResult");
      return { key, size, etag: unquote(text(result, "ETag") ?? ""), modified: dateOf(response.headers) };
    },
    async abort() {
      try {
        await request({ operation: "AbortMultipartUpload", method: "DELETE", url: url(key, { uploadId }), context: { path: key, uploadId } });
      } catch (err) {
        // NoSuchUpload: already aborted or completed, which the interface does not count as an error.
        if (!(err instanceof MultipartUnknownError)) throw err;
      }
    },
  });

  const createMultipart = async (key: string): Promise<MultipartUpload> => {
    const response = await request({ operation: "CreateMultipartUpload", method: "POST", url: url(key, { uploads: "" }), context: { path: key } });
    const uploadId = text(child(parseXml(await response.text()), "InitiateMultipartUploadResult"), "UploadId");
    if (!uploadId) throw new S3RequestError(key, NAME, new S3ResponseError("CreateMultipartUpload", "MalformedResponse", response.status, undefined, "no UploadId in the response"));
    return handle(key, uploadId);
  };

  const copySource = (key: string) => `/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;

  /** UploadPartCopy ranges into a multipart upload at `to` (sources over CopyObject's 5 GiB). */
  const multipartCopy = async (from: string, to: string, source: ObjectInfo): Promise<ObjectInfo> => {
    const partSize = Math.max(copyPartSize, Math.ceil(source.size / MULTIPART_LIMITS.maxParts / (1024 * 1024)) * 1024 * 1024);
    const upload = await createMultipart(to);
    try {
      const ranges: { partNumber: number; first: number; last: number }[] = [];
      for (let offset = 0, n = 1; offset < source.size; offset += partSize, n++) {
        ranges.push({ partNumber: n, first: offset, last: Math.min(offset + partSize, source.size) - 1 });
      }
      const parts: UploadedPart[] = [];
      for (let i = 0; i < ranges.length; i += COPY_CONCURRENCY) {
        const batch = ranges.slice(i, i + COPY_CONCURRENCY).map(async ({ partNumber, first, last }) => {
          const call: Call = {
            operation: "UploadPartCopy",
            method: "PUT",
            url: url(to, { partNumber, uploadId: upload.uploadId }),
            context: { path: from, uploadId: upload.uploadId },
            headers: {
              "x-amz-copy-source": copySource(from),
              "x-amz-copy-source-range": `bytes=${first}-${last}`,
              // The object statted is the one copied: a concurrent overwrite fails the copy.
              "x-amz-copy-source-if-match": `"${source.etag}"`,
            },
          };
          const result = child(await xmlResult(call, await request(call)), "CopyPartResult");
          return { partNumber, etag: unquote(text(result, "ETag") ?? "") };
        });
        parts.push(...(await Promise.all(batch)));
      }
      const done = await upload.complete(parts);
      return { ...done, size: source.size };
    } catch (err) {
      await upload.abort().catch(() => undefined);
      throw err;
    }
  };

  return withKeyValidation({
    name: NAME,
    async get(key, opts = {}) {
      const range = opts.range;
      let response: Response;
      try {
        response = await request({
          operation: "GetObject",
          method: "GET",
          url: url(key),
          context: range ? { path: key, range } : { path: key },
          ...(range ? { headers: { range: rangeHeader(range) } } : {}),
        });
      } catch (err) {
        // S3 refuses any range of an empty object; the interface (as R2) gives offset 0 of it.
        if (err instanceof InvalidRangeError && range && "offset" in range && range.offset === 0) {
          const info = await head(key);
          if (info.size === 0) return { ...info, body: new ReadableStream<Uint8Array>({ start: (c) => c.close() }), range: { offset: 0, length: 0 } };
        }
        throw err;
      }
      const body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
      if (response.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
        if (!m) throw new S3RequestError(key, NAME, new S3ResponseError("GetObject", "MalformedResponse", 206, undefined, "206 without a Content-Range"));
        const offset = Number(m[1]);
        const length = Number(m[2]) - offset + 1;
        const size = m[3] === "*" ? (await head(key)).size : Number(m[3]);
        return { ...infoFrom(key, response.headers, size), body, range: { offset, length } };
      }
      const size = Number(response.headers.get("content-length") ?? 0);
      const result: GetResult = { ...infoFrom(key, response.headers, size), body };
      // A store may answer a range covering the whole object with 200.
      if (range) result.range = { offset: 0, length: size };
      return result;
    },

    async put(key, body, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.sha256 !== undefined) headers["x-amz-content-sha256"] = opts.sha256.toLowerCase();
      if (opts.onlyIf?.doesNotExist) headers["if-none-match"] = "*";
      if (opts.onlyIf?.etagMatches !== undefined) headers["if-match"] = `"${opts.onlyIf.etagMatches}"`;
      const data = payload(body);
      const response = await request({
        operation: "PutObject",
        method: "PUT",
        url: url(key),
        context: opts.onlyIf?.etagMatches !== undefined ? { path: key, conditional: true } : { path: key },
        headers,
        body: data,
      });
      await response.body?.cancel();
      return { key, size: data.length, etag: unquote(response.headers.get("etag") ?? ""), modified: dateOf(response.headers) };
    },

    stat: head,

    async list(prefix, opts = {}) {
      const limit = Math.max(1, Math.min(opts.limit ?? 1000, 1000));
      const response = await request({
        operation: "ListObjectsV2",
        method: "GET",
        url: url(undefined, { "list-type": 2, prefix, "max-keys": limit, "continuation-token": opts.cursor }),
        context: { path: prefix },
      });
      const result = child(parseXml(await response.text()), "ListBucketResult");
      const keys = children(result, "Contents").map((c) => text(c, "Key") ?? "");
      const cursor = text(result, "IsTruncated") === "true" ? text(result, "NextContinuationToken") : undefined;
      return cursor ? { keys, cursor } : { keys };
    },

    async delete(...keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const xml = new TextEncoder().encode(buildXml({ Delete: { Quiet: "true", Object: batch.map((k) => ({ Key: k })) } }));
        const call: Call = {
          operation: "DeleteObjects",
          method: "POST",
          url: url(undefined, { delete: "" }),
          context: { path: batch.join(",") },
          // AWS requires an integrity header on DeleteObjects.
          headers: { "content-type": "application/xml", "content-md5": await md5Base64(xml) },
          body: { bytes: xml, length: xml.length },
        };
        const result = child(await xmlResult(call, await request(call)), "DeleteResult");
        const failed = children(result, "Error")[0];
        if (failed) {
          const key = text(failed, "Key") ?? batch.join(",");
          throw s3Failure(new S3ResponseError("DeleteObjects", text(failed, "Code") ?? "DeleteFailed", 200, undefined, text(failed, "Message") ?? "delete failed"), {
            driver: NAME,
            endpoint: where,
            bucket,
            path: key,
          });
        }
      }
    },

    createMultipart,
    resumeMultipart: handle,

    async copy(from, to) {
      const source = await head(from);
      if (source.size > copyThreshold) return multipartCopy(from, to, source);
      const call: Call = {
        operation: "CopyObject",
        method: "PUT",
        url: url(to),
        context: { path: from },
        headers: { "x-amz-copy-source": copySource(from), "x-amz-copy-source-if-match": `"${source.etag}"` },
      };
      const response = await request(call);
      const result = child(await xmlResult(call, response), "CopyObjectResult");
      const modified = text(result, "LastModified");
      return { key: to, size: source.size, etag: unquote(text(result, "ETag") ?? ""), modified: modified ? new Date(modified) : dateOf(response.headers) };
    },
  });
}

/**
 * The interface's multipart rules (R2's), checked against what the store holds before
 * CompleteMultipartUpload, which on S3 would accept unequal parts. Returns the object's size.
 */
function checkParts(key: string, stored: Map<number, { etag: string; size: number }>, parts: UploadedPart[]): number {
  if (parts.length === 0) throw new InvalidPartError(key, NAME, "no parts");
  if (parts.length > MULTIPART_LIMITS.maxParts) throw new InvalidPartError(key, NAME, `more than ${MULTIPART_LIMITS.maxParts} parts`);
  let previous = 0;
  let total = 0;
  let first: number | undefined;
  parts.forEach((p, i) => {
    if (p.partNumber <= previous) throw new InvalidPartError(key, NAME, "part numbers must be ascending");
    previous = p.partNumber;
    const s = stored.get(p.partNumber);
    if (!s || s.etag !== unquote(p.etag)) throw new InvalidPartError(key, NAME, `part ${p.partNumber} not found (unknown or stale etag)`);
    total += s.size;
    if (i === parts.length - 1) return;
    first ??= s.size;
    if (s.size !== first) throw new InvalidPartError(key, NAME, `part ${p.partNumber} is ${s.size} bytes, not ${first}: all parts but the last must be the same size`);
    if (s.size < MULTIPART_LIMITS.minPartSize) throw new InvalidPartError(key, NAME, `part ${p.partNumber} is smaller than ${MULTIPART_LIMITS.minPartSize} bytes`);
  });
  return total;
}

function payload(body: PutBody): Payload {
  if (typeof body === "string") return bytesPayload(body);
  if (body instanceof Uint8Array) return { bytes: body, length: body.length };
  return sizedPayload(body);
}

function bytesPayload(s: string): Payload {
  const bytes = new TextEncoder().encode(s);
  return { bytes, length: bytes.length };
}

/**
 * A stream goes through a FixedLengthStream so that workerd sends a Content-Length instead of
 * chunked encoding: S3 refuses a PUT without one (411 MissingContentLength).
 */
function sizedPayload(body: SizedStream): Payload {
  const fixed = new FixedLengthStream(body.length);
  void body.stream.pipeTo(fixed.writable).catch(() => {
    // Surfaces as the request failing: the store sees a short body.
  });
  return { stream: fixed.readable as ReadableStream<Uint8Array>, length: body.length };
}

function rangeHeader(range: ByteRange): string {
  if ("suffix" in range) return `bytes=-${range.suffix}`;
  if (range.length === undefined) return `bytes=${range.offset}-`;
  return `bytes=${range.offset}-${range.offset + Math.max(range.length, 1) - 1}`;
}

function infoFrom(key: string, headers: Headers, size: number): ObjectInfo {
  const modified = headers.get("last-modified");
  return { key, size, etag: unquote(headers.get("etag") ?? ""), modified: modified ? new Date(modified) : dateOf(headers) };
}

function dateOf(headers: Headers): Date {
  const date = headers.get("date");
  return date ? new Date(date) : new Date();
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/"/g, "");
}

function parseEndpoint(endpoint: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new TypeError(`createS3Driver: endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  if (!/^https?:$/.test(parsed.protocol) || (parsed.pathname !== "/" && parsed.pathname !== "") || parsed.search) {
    throw new TypeError(`createS3Driver: endpoint must be an http(s) URL without path or query (the bucket is separate), got ${JSON.stringify(endpoint)}`);
  }
  return parsed;
}

function isLocalHost(hostname: string): boolean {
  return hostname === "localhost" || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith("[");
}

async function md5Base64(bytes: Uint8Array): Promise<string> {
  // MD5 is not in Web Crypto's standard list, but workerd offers it for exactly this use.
  const digest = new Uint8Array(await crypto.subtle.digest("MD5", bytes as Uint8Array<ArrayBuffer>));
  return btoa(String.fromCharCode(...digest));
}

function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
}
