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
  PathNotFoundError,
  PreconditionFailedError,
  StorageUnavailableError,
  type ByteRange,
  type GetResult,
  type MultipartUpload,
  type ObjectInfo,
  type PutBody,
  type SizedStream,
  type StorageDriver,
  type UploadedPart,
} from "./driver.ts";
import { parseRetryAfter, retrying, retryPolicy, type RetryPolicy } from "./retry.ts";
import { isTransientS3, mayHaveTakenEffect, readS3Error, s3Failure, S3RequestError, S3ResponseError, type S3ErrorContext } from "./s3-errors.ts";
import { buildXml, child, children, parseXml, text, type XmlElement } from "./s3-xml.ts";

export { S3BucketNotFoundError, S3CredentialsError, S3ResponseError } from "./s3-errors.ts";

const NAME = "s3";
const GiB = 1024 * 1024 * 1024;
/** CopyObject copies at most 5 GiB in one request. */
const MAX_COPY_OBJECT_SIZE = 5 * GiB;
const DEFAULT_COPY_PART_SIZE = 512 * 1024 * 1024;
const COPY_CONCURRENCY = 4;
/** Default time for a request to answer (headers, plus the XML body of calls that have one). */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Default slowest transfer rate a body may have before its request counts as hung: 1 MiB/s. */
const DEFAULT_TIMEOUT_BYTES_PER_SECOND = 1024 * 1024;
/**
 * The store's clock (Initiated of ListMultipartUploads) is compared with ours through its Date
 * header, which has one-second resolution: candidates are taken this much wider on each side.
 */
const CLOCK_MARGIN_MS = 2_000;

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
  /**
   * How transient faults (429, 5xx, SlowDown, InternalError, network errors, timeouts) are
   * retried, for requests whose body can be sent again (./retry.ts; default 6 attempts, full
   * jitter over windows of 200 ms doubling to 10 s, a Retry-After of up to 20 s honoured).
   * Once they are used up the call fails with StorageUnavailableError.
   */
  retry?: Partial<RetryPolicy>;
  /** @deprecated Attempts after the first; `retry.attempts` is the number of attempts in all. */
  retries?: number;
  /**
   * How long a request may go without answering before it counts as failed (and is retried when
   * its body can be sent again): default 30 s for the headers, and for calls answering XML
   * (listings, CopyObject, CompleteMultipartUpload...) for the body too; a hung store must not
   * hold the upload's queue forever. Requests carrying or copying bytes get longer (see
   * `timeoutBytesPerSecond`).
   */
  requestTimeoutMs?: number;
  /**
   * The slowest rate at which a body (sent, or copied by the store for CopyObject and
   * UploadPartCopy) still counts as moving: the timeout grows by its length at this rate
   * (default 1 MiB/s, so an 8 MiB part may take 30 + 8 s).
   */
  timeoutBytesPerSecond?: number;
}

/** One prepared request body: bytes, or a stream of known length (sent once, never retried). */
type Payload = { bytes: Uint8Array; length: number } | { stream: ReadableStream<Uint8Array>; length: number };

/** What the attempts of one call came to, for callers that must tell "refused" from "lost answer". */
interface Attempts {
  count: number;
  /** An attempt failed in a way that may have come after the store carried it out (timeout, network error, 500...). */
  effectUnknown: boolean;
}

/** One attempt's transient failure; it never leaves the driver (exhausted retries become StorageUnavailableError). */
class TransientAttempt extends Error {
  constructor(
    readonly failure: S3ResponseError,
    readonly retryAfterMs: number | undefined,
    readonly effectUnknown: boolean,
  ) {
    super(failure.message);
  }
}

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
  const policy = retryPolicy({ ...(options.retries !== undefined ? { attempts: options.retries + 1 } : {}), ...options.retry });
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const bytesPerMs = (options.timeoutBytesPerSecond ?? DEFAULT_TIMEOUT_BYTES_PER_SECOND) / 1000;
  if (!(requestTimeoutMs > 0) || !(bytesPerMs > 0)) throw new RangeError("createS3Driver: requestTimeoutMs and timeoutBytesPerSecond must be positive");
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
  /** If-Match with the ETag quoted (RFC 9110, AWS), until the store shows it wants it bare (Ceph RGW). */
  let ifMatchQuoted = true;

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
    /** Bytes the store moves for this call without us sending them (CopyObject, UploadPartCopy): time it may take. */
    work?: number;
  }

  /**
   * Signs and sends, retrying transient faults under the policy when the body can be sent again,
   * each attempt bounded by the timeout. An error response becomes a typed error; a transient one
   * still failing after the last attempt becomes StorageUnavailableError. With `readXml`, the
   * body is read (within the timeout) and parsed, and a 200 whose body is an `<Error>` is treated
   * as the error it is (S3 sends one when CopyObject, UploadPartCopy or CompleteMultipartUpload
   * fails after the 200 went out), so it is retried like any other.
   */
  const exchange = async (call: Call, readXml: boolean, seen: Attempts): Promise<{ response: Response; xml?: XmlElement }> => {
    const ctx: S3ErrorContext = { driver: NAME, endpoint: where, bucket, ...call.context };
    const replayable = !call.body || "bytes" in call.body;
    const timeoutMs = requestTimeoutMs + Math.ceil(((call.body?.length ?? 0) + (call.work ?? 0)) / bytesPerMs);
    const transient = (failure: S3ResponseError, response?: Response) =>
      new TransientAttempt(failure, parseRetryAfter(response?.headers.get("retry-after")), mayHaveTakenEffect(failure));
    const attempt = async (): Promise<{ response: Response; xml?: XmlElement }> => {
      seen.count++;
      const headers: Record<string, string> = { ...call.headers };
      let body: BodyInit | undefined;
      if (call.body) {
        body = "bytes" in call.body ? (call.body.bytes as Uint8Array<ArrayBuffer>) : call.body.stream;
        // workerd sends the length of bytes or of a FixedLengthStream (./sizedPayload) by itself;
        // the header also tells a wrapping `fetch` option (byte counting in tests) the length.
        headers["content-length"] = String(call.body.length);
      }
      const signed = await client.sign(call.url, { method: call.method, headers, ...(body !== undefined ? { body } : {}) });
      const controller = new AbortController();
      let timer: ReturnType<typeof setTimeout> | undefined;
      // Raced against the fetch as well as aborting it, so a `fetch` that ignores its signal
      // cannot hold the caller either.
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new TransientAttempt(new S3ResponseError(call.operation, "Timeout", 0, undefined, `no answer within ${timeoutMs} ms`), undefined, true));
        }, timeoutMs);
      });
      expired.catch(() => undefined);
      const bounded = async <T>(work: Promise<T>): Promise<T> => {
        try {
          return await Promise.race([work, expired]);
        } catch (err) {
          if (err instanceof TransientAttempt) throw err;
          throw new TransientAttempt(
            new S3ResponseError(call.operation, "NetworkError", 0, undefined, String((err as Error)?.message ?? err)),
            undefined,
            true,
          );
        }
      };
      try {
        const response = await bounded(send(new Request(signed, { signal: controller.signal })));
        if (!response.ok) {
          const failure = await bounded(readS3Error(call.operation, response));
          if (isTransientS3(failure)) throw transient(failure, response);
          throw s3Failure(failure, ctx);
        }
        if (!readXml) return { response };
        const xml = parseXml(await bounded(response.text()));
        if (child(xml, "Error")) {
          const failure = await readS3Error(call.operation, response, xml);
          if (isTransientS3(failure)) throw transient(failure, response);
          throw s3Failure(failure, ctx);
        }
        return { response, xml };
      } catch (err) {
        if (err instanceof TransientAttempt && err.effectUnknown) seen.effectUnknown = true;
        throw err;
      } finally {
        if (timer !== undefined) clearTimeout(timer);
      }
    };
    return retrying(attempt, {
      // A streamed body cannot be sent again: one attempt, and a transient failure is still
      // reported as one.
      policy: replayable ? policy : { ...policy, attempts: 1 },
      classify: (err) => (err instanceof TransientAttempt ? (err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }) : undefined),
      exhausted: (err, attempts, retryAfterMs) =>
        new StorageUnavailableError(call.context.path, NAME, attempts, retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000), {
          cause: err instanceof TransientAttempt ? err.failure : err,
        }),
    });
  };

  /** A call answered by its status and headers (the body, if any, is the caller's). */
  const request = async (call: Call, seen: Attempts = { count: 0, effectUnknown: false }): Promise<Response> => (await exchange(call, false, seen)).response;

  /** A call answered with an XML document (listings, CreateMultipartUpload, copies, Complete, DeleteObjects). */
  const requestXml = async (call: Call, seen: Attempts = { count: 0, effectUnknown: false }): Promise<{ response: Response; xml: XmlElement }> => {
    const { response, xml } = await exchange(call, true, seen);
    return { response, xml: xml ?? parseXml("") };
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
      let xml: XmlElement;
      try {
        ({ xml } = await requestXml({
          operation: "ListParts",
          method: "GET",
          url: url(key, { uploadId, "max-parts": 1000, "part-number-marker": marker }),
          context: { path: key, uploadId },
        }));
      } catch (err) {
        // Ceph RGW answers ListParts of an aborted or completed upload with NoSuchKey, not
        // NoSuchUpload: for ListParts both mean the upload id is gone.
        if (err instanceof PathNotFoundError) throw new MultipartUnknownError(key, NAME, uploadId, { cause: err.cause });
        throw err;
      }
      const result = child(xml, "ListPartsResult");
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
        body: bytesPayload(buildXml({ CompleteMultipartUpload: { Part: parts.map((p) => ({ PartNumber: String(p.partNumber), ETag: `"${p.etag}"` })) } })),
      };
      const seen: Attempts = { count: 0, effectUnknown: false };
      try {
        const { response, xml } = await requestXml(call, seen);
        const result = child(xml, "CompleteMultipartUploadResult");
        let etag = unquote(text(result, "ETag") ?? "");
        // Ceph RGW 16 answers an empty <ETag> (a known bug; HEAD gives the right one): S3's
        // multipart ETag of these parts, or the object's own when the parts' are no MD5s.
        if (!etag) etag = (await multipartEtag(parts.map((p) => stored.get(p.partNumber)?.etag ?? ""))) ?? (await head(key)).etag;
        return { key, size, etag, modified: dateOf(response.headers) };
      } catch (err) {
        // An earlier attempt may have completed the upload and lost its answer: the retry then
        // finds the upload id gone. The object is ours when its ETag is the multipart ETag of
        // exactly these parts (S3's MD5 of the parts' MD5s, "-" and the count).
        if (!(err instanceof MultipartUnknownError) || !seen.effectUnknown) throw err;
        const expected = await multipartEtag(parts.map((p) => stored.get(p.partNumber)?.etag ?? ""));
        const info = expected ? await head(key).catch(() => undefined) : undefined;
        if (info && info.etag === expected && info.size === size) return info;
        throw err;
      }
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

  /**
   * CreateMultipartUpload, made idempotent. S3 has no idempotency token for it, so an attempt
   * whose answer was lost (timeout, network error, 500) may have created an upload nobody knows
   * the id of: parts of it would be billed until a lifecycle rule aborts it. After such a retry
   * the driver lists the key's multipart uploads (ListMultipartUploads) and ABORTS every one
   * initiated while the lost attempts were under way (the store's clock read through its Date
   * header, with a 2 s margin) that holds no parts, keeping the one whose answer arrived. Aborting
   * rather than reusing one: the driver never hands out an upload it did not see created, and an
   * upload with no parts that nobody has the id of is exactly what a lost answer leaves behind.
   * (Another writer's upload of the same key created within those seconds and still without a
   * part would be aborted too; its next UploadPart fails MultipartUnknownError, which the writer
   * treats as a lost upload.) The clean-up is best effort: a store without ListMultipartUploads, or
   * one failing it, leaves the orphan to the bucket's lifecycle rule and the create still succeeds;
   * so does a create that fails in the end.
   */
  const createMultipart = async (key: string): Promise<MultipartUpload> => {
    const started = Date.now();
    const seen: Attempts = { count: 0, effectUnknown: false };
    // When every attempt fails the store is down or unreachable: cleaning up then would hold the
    // caller through another round of retries, so those orphans are left to the lifecycle rule.
    const answer = await requestXml({ operation: "CreateMultipartUpload", method: "POST", url: url(key, { uploads: "" }), context: { path: key } }, seen);
    const uploadId = text(child(answer.xml, "InitiateMultipartUploadResult"), "UploadId");
    if (!uploadId)
      throw new S3RequestError(
        key,
        NAME,
        new S3ResponseError("CreateMultipartUpload", "MalformedResponse", answer.response.status, undefined, "no UploadId in the response"),
      );
    if (seen.effectUnknown) await abortOrphans(key, uploadId, started);
    return handle(key, uploadId);
  };

  /** The clean-up half of createMultipart: aborts part-less uploads of `key` initiated since `started` (our clock), but `keep`. */
  const abortOrphans = async (key: string, keep: string | undefined, started: number): Promise<void> => {
    try {
      const { response, xml } = await requestXml({
        operation: "ListMultipartUploads",
        method: "GET",
        url: url(undefined, { uploads: "", prefix: key, "max-uploads": 1000 }),
        context: { path: key },
      });
      const received = Date.now();
      const serverNow = Date.parse(response.headers.get("date") ?? "");
      const skew = Number.isNaN(serverNow) ? 0 : serverNow - received;
      const from = started + skew - CLOCK_MARGIN_MS;
      const to = received + skew + CLOCK_MARGIN_MS;
      for (const upload of children(child(xml, "ListMultipartUploadsResult"), "Upload")) {
        const id = text(upload, "UploadId");
        const initiated = Date.parse(text(upload, "Initiated") ?? "");
        if (text(upload, "Key") !== key || !id || id === keep || !(initiated >= from && initiated <= to)) continue;
        if ((await listParts(key, id)).size > 0) continue;
        await handle(key, id).abort();
      }
    } catch {
      // Best effort (see createMultipart): the bucket's lifecycle rule is the backstop.
    }
  };

  /**
   * Whether `bytes` is what the store holds at `key`: after a conditional PutObject whose first
   * answer was lost, the retry's 412 may be our own write. The ETag of a single PutObject is the
   * body's MD5 on AWS, R2 and MinIO; a store whose ETag is something else (SSE-KMS) has the
   * object read back and compared.
   */
  const holds = async (key: string, bytes: Uint8Array): Promise<ObjectInfo | undefined> => {
    let info: ObjectInfo;
    try {
      info = await head(key);
    } catch (err) {
      if (err instanceof PathNotFoundError) return undefined;
      throw err;
    }
    if (info.size !== bytes.length) return undefined;
    if (info.etag === (await md5Hex(bytes))) return info;
    const got = await driverGet(key);
    const stored = new Uint8Array(await new Response(got.body).arrayBuffer());
    return stored.length === bytes.length && stored.every((b, i) => b === bytes[i]) ? info : undefined;
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
            work: last - first + 1,
          };
          const result = child((await requestXml(call)).xml, "CopyPartResult");
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

  /** GetObject; also used by `holds` to read back what a conditional PUT may have stored. */
  const driverGet = async (key: string, opts: { range?: ByteRange } = {}): Promise<GetResult> => {
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
  };

  return withKeyValidation({
    name: NAME,
    get: driverGet,

    async put(key, body, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.sha256 !== undefined) headers["x-amz-content-sha256"] = opts.sha256.toLowerCase();
      if (opts.onlyIf?.doesNotExist) headers["if-none-match"] = "*";
      const expected = opts.onlyIf?.etagMatches;
      const data = payload(body);
      const attempt = async (quoted: boolean): Promise<ObjectInfo> => {
        if (expected !== undefined) headers["if-match"] = quoted ? `"${expected}"` : expected;
        const seen: Attempts = { count: 0, effectUnknown: false };
        let response: Response;
        try {
          response = await request(
            {
              operation: "PutObject",
              method: "PUT",
              url: url(key),
              context: expected !== undefined ? { path: key, conditional: true } : { path: key },
              headers,
              body: data,
            },
            seen,
          );
        } catch (err) {
          // A conditional write whose earlier attempt may have landed: the retry's 412 is then our
          // own write answering, which is success when the store holds exactly what we sent.
          if (err instanceof PreconditionFailedError && seen.effectUnknown && "bytes" in data) {
            const info = await holds(key, data.bytes);
            if (info) return info;
          }
          throw err;
        }
        await response.body?.cancel();
        return { key, size: data.length, etag: unquote(response.headers.get("etag") ?? ""), modified: dateOf(response.headers) };
      };
      try {
        return await attempt(ifMatchQuoted);
      } catch (err) {
        // Ceph RGW 16 compares If-Match with the bare ETag, so the quoted form RFC 9110 and AWS
        // use never matches there. A 412 while the object still has the expected ETag is that:
        // the same compare-and-swap again, unquoted, and unquoted from then on for this store.
        if (!(err instanceof PreconditionFailedError) || expected === undefined || !ifMatchQuoted || !("bytes" in data)) throw err;
        const current = await head(key).catch(() => undefined);
        if (current?.etag !== expected) throw err;
        ifMatchQuoted = false;
        return attempt(false);
      }
    },

    stat: head,

    async list(prefix, opts = {}) {
      const limit = Math.max(1, Math.min(opts.limit ?? 1000, 1000));
      const { xml } = await requestXml({
        operation: "ListObjectsV2",
        method: "GET",
        url: url(undefined, { "list-type": 2, prefix, "max-keys": limit, "continuation-token": opts.cursor }),
        context: { path: prefix },
      });
      const result = child(xml, "ListBucketResult");
      const keys = children(result, "Contents").map((c) => text(c, "Key") ?? "");
      const cursor = text(result, "IsTruncated") === "true" ? text(result, "NextContinuationToken") : undefined;
      return cursor ? { keys, cursor } : { keys };
    },

    async delete(...keys) {
      if (keys.length === 1) {
        // One key, as the writer deletes the previous hasher state after each part: DeleteObject,
        // a body-less request and answer (204 whether or not the key existed), instead of
        // DeleteObjects' XML both ways with its Content-MD5.
        const key = keys[0] as string;
        try {
          const response = await request({ operation: "DeleteObject", method: "DELETE", url: url(key), context: { path: key } });
          await response.body?.cancel();
        } catch (err) {
          // A store answering NoSuchKey for an absent key: absent keys are not an error here.
          if (!(err instanceof PathNotFoundError)) throw err;
        }
        return;
      }
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
        const result = child((await requestXml(call)).xml, "DeleteResult");
        const failed = children(result, "Error")[0];
        if (failed) {
          const key = text(failed, "Key") ?? batch.join(",");
          throw s3Failure(
            new S3ResponseError("DeleteObjects", text(failed, "Code") ?? "DeleteFailed", 200, undefined, text(failed, "Message") ?? "delete failed"),
            {
              driver: NAME,
              endpoint: where,
              bucket,
              path: key,
            },
          );
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
        work: source.size,
      };
      const { response, xml } = await requestXml(call);
      const result = child(xml, "CopyObjectResult");
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
    if (s.size !== first)
      throw new InvalidPartError(key, NAME, `part ${p.partNumber} is ${s.size} bytes, not ${first}: all parts but the last must be the same size`);
    if (s.size < MULTIPART_LIMITS.minPartSize)
      throw new InvalidPartError(key, NAME, `part ${p.partNumber} is smaller than ${MULTIPART_LIMITS.minPartSize} bytes`);
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

async function md5Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("MD5", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** S3's ETag of a completed multipart upload: MD5 of the parts' binary MD5s, "-", the count; undefined when a part's ETag is no MD5. */
async function multipartEtag(partEtags: string[]): Promise<string | undefined> {
  if (partEtags.length === 0 || !partEtags.every((e) => /^[0-9a-f]{32}$/i.test(e))) return undefined;
  const joined = new Uint8Array(partEtags.length * 16);
  partEtags.forEach((e, i) => {
    for (let j = 0; j < 16; j++) joined[i * 16 + j] = parseInt(e.slice(j * 2, j * 2 + 2), 16);
  });
  return `${await md5Hex(joined)}-${partEtags.length}`;
}
