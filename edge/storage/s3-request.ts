/**
 * The S3 driver's wire (./s3.ts): one connection to one bucket, whose calls are signed with
 * aws4fetch (SigV4), sent with their body's length known, each attempt bounded by a timeout, and
 * retried under the policy (./retry.ts) when the body can be sent again. Error answers become the
 * typed errors of ./s3-errors.ts; a transient one still failing after the last attempt becomes
 * StorageUnavailableError.
 */
import { AwsClient } from "aws4fetch";
import { StorageUnavailableError, type ObjectInfo, type PutBody, type StorageError } from "./driver.ts";
import { parseRetryAfter, retrying, retryPolicy, type RetryPolicy } from "./retry.ts";
import { isTransientS3, mayHaveTakenEffect, readS3Error, s3Failure, S3ResponseError, type S3ErrorContext } from "./s3-errors.ts";
import { child, parseXml, type XmlElement } from "./s3-xml.ts";
import { fixedLength } from "./workerd-body.ts";
import type { S3DriverOptions } from "./s3.ts";

/** The driver's name, in its errors. */
export const NAME = "s3";
/** Default time for a request to answer (headers, plus the XML body of calls that have one). */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Default slowest transfer rate a body may have before its request counts as hung: 1 MiB/s. */
const DEFAULT_TIMEOUT_BYTES_PER_SECOND = 1024 * 1024;

/** One prepared request body: bytes, or a stream of known length (sent once, never retried). */
export type Payload = { bytes: Uint8Array; length: number } | { stream: ReadableStream<Uint8Array>; length: number };

/** What the attempts of one call came to, for callers that must tell "refused" from "lost answer". */
export interface Attempts {
  count: number;
  /** An attempt failed in a way that may have come after the store carried it out (timeout, network error, 500...). */
  effectUnknown: boolean;
}

/** A fresh tally for one call. */
export function noAttempts(): Attempts {
  return { count: 0, effectUnknown: false };
}

/** One S3 call, as the operations describe it. */
export interface S3Call {
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

type Query = Record<string, string | number | undefined>;

/** A signed, retrying connection to one bucket: what every S3 operation is written against. */
export interface S3Connection {
  readonly bucket: string;
  /** If-Match with the ETag quoted (RFC 9110, AWS), until the store shows it wants it bare (Ceph RGW). */
  ifMatchQuoted: boolean;
  /** The URL of `key` (undefined: the bucket) with a query; an empty value gives a bare name (`?uploads`). */
  url(key: string | undefined, query?: Query): string;
  /** `key` as the x-amz-copy-source header names it. */
  copySource(key: string): string;
  /** A call answered by its status and headers (the body, if any, is the caller's). */
  request(call: S3Call, seen?: Attempts): Promise<Response>;
  /** A call answered with an XML document (listings, CreateMultipartUpload, copies, Complete, DeleteObjects). */
  requestXml(call: S3Call, seen?: Attempts): Promise<{ response: Response; xml: XmlElement }>;
  /** The typed error for an error the store reported inside a successful answer (DeleteObjects' per-key errors). */
  failure(err: S3ResponseError, path: string): StorageError;
}

/** What sending needs: the signer, the transport, and how long and how often to try. */
interface Sender {
  client: AwsClient;
  send: (request: Request) => Promise<Response>;
  policy: RetryPolicy;
  requestTimeoutMs: number;
  bytesPerMs: number;
  errorContext: Pick<S3ErrorContext, "driver" | "endpoint" | "bucket">;
}

type Answer = { response: Response; xml?: XmlElement };

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

/** Checks the connection options and opens the connection (no request is sent yet). */
export function connectS3(options: S3DriverOptions): S3Connection {
  const endpoint = parseEndpoint(options.endpoint);
  const { bucket, region } = options;
  if (!bucket) throw new TypeError("createS3Driver: bucket is required");
  if (!region) throw new TypeError("createS3Driver: region is required");
  if (!options.accessKeyId || !options.secretAccessKey) throw new TypeError("createS3Driver: accessKeyId and secretAccessKey are required");
  const pathStyle = options.forcePathStyle ?? isLocalHost(endpoint.hostname);
  const origin = pathStyle ? `${endpoint.origin}/${encodeURIComponent(bucket)}` : `${endpoint.protocol}//${bucket}.${endpoint.host}`;
  const errorContext = { driver: NAME, endpoint: `${endpoint.origin} (bucket ${bucket})`, bucket };
  const sender = senderFor(options, errorContext);
  return {
    bucket,
    ifMatchQuoted: true,
    url: (key, query = {}) => `${origin}${key === undefined ? (pathStyle ? "" : "/") : `/${encodeKey(key)}`}${queryString(query)}`,
    copySource: (key) => `/${encodeURIComponent(bucket)}/${encodeKey(key)}`,
    request: async (call, seen = noAttempts()) => (await exchange(sender, call, false, seen)).response,
    requestXml: async (call, seen = noAttempts()) => {
      const { response, xml } = await exchange(sender, call, true, seen);
      return { response, xml: xml ?? {} };
    },
    failure: (err, path) => s3Failure(err, { ...errorContext, path }),
  };
}

function senderFor(options: S3DriverOptions, errorContext: Sender["errorContext"]): Sender {
  const policy = retryPolicy({ ...(options.retries !== undefined ? { attempts: options.retries + 1 } : {}), ...options.retry });
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const bytesPerMs = (options.timeoutBytesPerSecond ?? DEFAULT_TIMEOUT_BYTES_PER_SECOND) / 1000;
  if (!(requestTimeoutMs > 0) || !(bytesPerMs > 0)) throw new RangeError("createS3Driver: requestTimeoutMs and timeoutBytesPerSecond must be positive");
  const client = new AwsClient({
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
    service: "s3",
    region: options.region,
    retries: 0, // retried here, and only when the body can be sent again
  });
  const send = options.fetch ?? ((request: Request) => fetch(request));
  return { client, send, policy, requestTimeoutMs, bytesPerMs, errorContext };
}

/**
 * Signs and sends, retrying transient faults under the policy when the body can be sent again,
 * each attempt bounded by the timeout. With `readXml`, the body is read (within the timeout) and
 * parsed, and a 200 whose body is an `<Error>` is treated as the error it is (S3 sends one when
 * CopyObject, UploadPartCopy or CompleteMultipartUpload fails after the 200 went out), so it is
 * retried like any other.
 */
function exchange(sender: Sender, call: S3Call, readXml: boolean, seen: Attempts): Promise<Answer> {
  const replayable = !call.body || "bytes" in call.body;
  const timeoutMs = sender.requestTimeoutMs + Math.ceil(((call.body?.length ?? 0) + (call.work ?? 0)) / sender.bytesPerMs);
  return retrying(() => attempt(sender, call, readXml, seen, timeoutMs), {
    // A streamed body cannot be sent again: one attempt, and a transient failure is still
    // reported as one.
    policy: replayable ? sender.policy : { ...sender.policy, attempts: 1 },
    classify: (err) => (err instanceof TransientAttempt ? (err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }) : undefined),
    exhausted: (err, attempts, retryAfterMs) =>
      new StorageUnavailableError(call.context.path, NAME, attempts, retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000), {
        cause: err instanceof TransientAttempt ? err.failure : err,
      }),
  });
}

async function attempt(sender: Sender, call: S3Call, readXml: boolean, seen: Attempts, timeoutMs: number): Promise<Answer> {
  seen.count++;
  const signed = await sign(sender.client, call);
  const deadline = startDeadline(call.operation, timeoutMs);
  try {
    const response = await deadline.bound(sender.send(new Request(signed, { signal: deadline.signal })));
    if (!response.ok) throw failureOf(sender, call, response, await deadline.bound(readS3Error(call.operation, response)));
    if (!readXml) return { response };
    const xml = parseXml(await deadline.bound(response.text()));
    if (child(xml, "Error")) throw failureOf(sender, call, response, await readS3Error(call.operation, response, xml));
    return { response, xml };
  } catch (err) {
    if (err instanceof TransientAttempt && err.effectUnknown) seen.effectUnknown = true;
    throw err;
  } finally {
    deadline.clear();
  }
}

function sign(client: AwsClient, call: S3Call): Promise<Request> {
  const headers: Record<string, string> = { ...call.headers };
  let body: BodyInit | undefined;
  if (call.body) {
    body = "bytes" in call.body ? (call.body.bytes as Uint8Array<ArrayBuffer>) : call.body.stream;
    // workerd sends the length of bytes or of a FixedLengthStream (./workerd-body.ts) by itself; the
    // header also tells a wrapping `fetch` option (byte counting in tests) the length.
    headers["content-length"] = String(call.body.length);
  }
  return client.sign(call.url, { method: call.method, headers, ...(body !== undefined ? { body } : {}) });
}

/** A transient failure to retry, or the typed error of a final one. */
function failureOf(sender: Sender, call: S3Call, response: Response, failure: S3ResponseError): Error {
  if (isTransientS3(failure)) return new TransientAttempt(failure, parseRetryAfter(response.headers.get("retry-after")), mayHaveTakenEffect(failure));
  return s3Failure(failure, { ...sender.errorContext, ...call.context });
}

/**
 * One attempt's time limit: it aborts the request, and `bound` races each step against it, so a
 * `fetch` that ignores its signal cannot hold the caller either. Network errors become transient.
 */
function startDeadline(operation: string, timeoutMs: number) {
  const controller = new AbortController();
  let expire: (reason: TransientAttempt) => void = () => undefined;
  const expired = new Promise<never>((_, reject) => {
    expire = reject;
  });
  const timer = setTimeout(() => {
    controller.abort();
    expire(new TransientAttempt(new S3ResponseError(operation, "Timeout", 0, undefined, `no answer within ${timeoutMs} ms`), undefined, true));
  }, timeoutMs);
  expired.catch(() => undefined);
  const bound = async <T>(work: Promise<T>): Promise<T> => {
    try {
      return await Promise.race([work, expired]);
    } catch (err) {
      if (err instanceof TransientAttempt) throw err;
      throw new TransientAttempt(new S3ResponseError(operation, "NetworkError", 0, undefined, String((err as Error)?.message ?? err)), undefined, true);
    }
  };
  return { signal: controller.signal, bound, clear: () => clearTimeout(timer) };
}

/** A put or part body, ready to send. */
export function payload(body: PutBody): Payload {
  if (typeof body === "string") return bytesPayload(body);
  if (body instanceof Uint8Array) return { bytes: body, length: body.length };
  return { stream: fixedLength(body), length: body.length };
}

/** A string (an XML document) as UTF-8 bytes. */
export function bytesPayload(s: string): Payload {
  const bytes = new TextEncoder().encode(s);
  return { bytes, length: bytes.length };
}

/** An object's info from a HEAD or GET answer. */
export function infoFrom(key: string, headers: Headers, size: number): ObjectInfo {
  const modified = headers.get("last-modified");
  return { key, size, etag: unquote(headers.get("etag") ?? ""), modified: modified ? new Date(modified) : dateOf(headers) };
}

/** When the store answered (its Date header), for answers without a Last-Modified. */
export function dateOf(headers: Headers): Date {
  const date = headers.get("date");
  return date ? new Date(date) : new Date();
}

/** An ETag as the interface carries it: no quotes, no weak prefix. */
export function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/"/g, "");
}

function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

function queryString(query: Query): string {
  const search = Object.entries(query)
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => (v === "" ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`))
    .join("&");
  return search ? `?${search}` : "";
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
