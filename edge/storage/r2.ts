/**
 * The driver over a Workers R2 binding. R2 is strongly consistent and enforces the multipart
 * rules itself; the binding has no copy, so `copy` is absent and callers copy by streaming
 * ranges (see edge/writer/writer.ts). R2 reports failures as plain Errors whose message ends in a
 * numeric code, e.g. "completeMultipartUpload: ... (10048)"; those codes are mapped to the
 * typed errors of ./driver.ts here.
 *
 * Transient binding failures (R2's 10001 InternalError, 10043 ServiceUnavailable, 10058
 * TooManyRequests, and errors that say "internal error", "network", "try again"...) are retried
 * under the drivers' one policy (./retry.ts) when the body can be sent again, and surface as
 * StorageUnavailableError once it is used up; definite ones (not found, precondition, bad digest,
 * invalid part, no such upload) are never retried. A conditional put retried after a failure
 * whose effect is unknown, and then refused, is success when R2 holds exactly our bytes: the first
 * attempt landed and only its answer was lost. A createMultipartUpload retried after such a
 * failure may leave an upload nobody knows the id of: the binding cannot list multipart uploads,
 * so that one is left to the bucket's lifecycle rule (R2 aborts incomplete multipart uploads
 * after 7 days by default).
 */
import { withKeyValidation } from "./base.ts";
import { isSizedStream } from "./body.ts";
import {
  BadDigestError,
  InvalidPartError,
  InvalidRangeError,
  MultipartUnknownError,
  PathNotFoundError,
  PreconditionFailedError,
  resolveRange,
  StorageError,
  StorageUnavailableError,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListResult,
  type MultipartUpload,
  type ObjectInfo,
  type PutBody,
  type PutOptions,
  type StorageDriver,
} from "./driver.ts";
import { retrying, retryPolicy, type RetryPolicy } from "./retry.ts";
import { fixedLength, isSameBody } from "./workerd-body.ts";

const NAME = "r2";

/** R2 error codes we act on (https://developers.cloudflare.com/r2/api/error-codes/). */
const R2_CODES = {
  noSuchUpload: 10024,
  invalidPart: 10025,
  entityTooSmall: 10011,
  invalidPartSizes: 10048,
  invalidRange: 10039,
} as const;

/** R2 codes that may pass if the call is made again (https://developers.cloudflare.com/r2/api/error-codes/). */
const TRANSIENT_CODES = new Map<number, { effectUnknown: boolean }>([
  [10001, { effectUnknown: true }], // InternalError
  [10043, { effectUnknown: false }], // ServiceUnavailable
  [10058, { effectUnknown: false }], // TooManyRequests (more than one write a second to a key)
]);

/** Words of transient failures whose message carries no code (network trouble between the worker and R2). */
const TRANSIENT_MESSAGE =
  /internal error|network|try again|temporar|service unavailable|overloaded|timed? ?out|connection (?:was )?(?:reset|lost|closed|refused)|disconnected/i;

export interface R2DriverOptions {
  /** How transient binding errors are retried (./retry.ts; default 6 attempts, full jitter from 200 ms to 10 s). */
  retry?: Partial<RetryPolicy>;
}

/** Whether a binding error may pass if the call is made again, and whether R2 may have acted on it. */
export function r2Transience(err: unknown): { effectUnknown: boolean } | undefined {
  if (err instanceof StorageError) return undefined; // already mapped: definite
  const code = r2Code(err);
  if (code !== undefined) return TRANSIENT_CODES.get(code);
  return TRANSIENT_MESSAGE.test(String((err as Error)?.message ?? err)) ? { effectUnknown: true } : undefined;
}

/** What the attempts of one call came to. */
interface Attempts {
  effectUnknown: boolean;
}

/** One bucket and the policy its calls are retried under: what every operation below is written against. */
interface R2Connection {
  bucket: R2Bucket;
  policy: RetryPolicy;
}

/** A driver over `bucket`, behind the key-validating wrapper. */
export function createR2Driver(bucket: R2Bucket, options: R2DriverOptions = {}): StorageDriver {
  const r2: R2Connection = { bucket, policy: retryPolicy(options.retry) };
  return withKeyValidation({
    name: NAME,
    get: (key, opts) => getObject(r2, key, opts),
    put: (key, body, opts) => putObject(r2, key, body, opts),
    stat: (key) => statObject(r2, key),
    list: (prefix, opts) => listObjects(r2, prefix, opts),
    delete: (...keys) => deleteObjects(r2, keys),
    createMultipart: async (key) => multipartUpload(r2, await retried(r2, key, () => bucket.createMultipartUpload(key))),
    resumeMultipart: (key, uploadId) => multipartUpload(r2, bucket.resumeMultipartUpload(key, uploadId)),
  });
}

/** Runs one binding call under the policy; `replayable` false (a stream body) allows one attempt. */
function retried<T>(r2: R2Connection, path: string, op: () => Promise<T>, replayable = true, seen: Attempts = { effectUnknown: false }): Promise<T> {
  return retrying(op, {
    policy: replayable ? r2.policy : { ...r2.policy, attempts: 1 },
    classify: (err) => {
      const transience = r2Transience(err);
      if (transience?.effectUnknown) seen.effectUnknown = true;
      return transience && {};
    },
    exhausted: (err, attempts) => new StorageUnavailableError(path, NAME, attempts, undefined, { cause: err }),
  });
}

async function getObject(r2: R2Connection, key: string, opts: { range?: ByteRange } = {}): Promise<GetResult> {
  const object = await retried(r2, key, async () => {
    try {
      return await r2.bucket.get(key, opts.range ? { range: opts.range } : {});
    } catch (err) {
      if (r2Code(err) === R2_CODES.invalidRange && opts.range) throw new InvalidRangeError(key, NAME, opts.range, { cause: err });
      throw err;
    }
  });
  if (!object) throw new PathNotFoundError(key, NAME);
  const result: GetResult = { ...info(object), body: object.body as ReadableStream<Uint8Array> };
  if (opts.range) result.range = resolvedRange(key, object.range, object.size, opts.range);
  return result;
}

async function putObject(r2: R2Connection, key: string, body: PutBody, opts: PutOptions = {}): Promise<ObjectInfo> {
  const options: R2PutOptions = {};
  if (opts.sha256 !== undefined) options.sha256 = opts.sha256;
  const conditions: string[][] = [];
  if (opts.onlyIf?.doesNotExist) conditions.push(["if-none-match", "*"]);
  if (opts.onlyIf?.etagMatches !== undefined) conditions.push(["if-match", `"${opts.onlyIf.etagMatches}"`]);
  if (conditions.length > 0) options.onlyIf = new Headers(conditions as [string, string][]);
  const seen: Attempts = { effectUnknown: false };
  const replayable = !isSizedStream(body);
  const put = async () => {
    try {
      return await r2.bucket.put(key, r2Body(body), options);
    } catch (err) {
      if (opts.sha256 !== undefined && /checksum .*did not match/i.test(String((err as Error)?.message))) throw new BadDigestError(key, NAME, { cause: err });
      throw err;
    }
  };
  const object = await retried(r2, key, put, replayable, seen);
  if (object) return info(object);
  // R2 answers a failed condition with null rather than an error. After an attempt whose
  // effect is unknown, the refusal may be our own write answering: success when R2 holds
  // exactly our bytes.
  if (seen.effectUnknown && replayable) {
    const mine = await holds(r2, key, typeof body === "string" ? new TextEncoder().encode(body) : (body as Uint8Array));
    if (mine) return mine;
  }
  throw new PreconditionFailedError(key, NAME);
}

/** Whether R2 holds exactly `bytes` at `key` (./workerd-body.ts isSameBody). */
async function holds(r2: R2Connection, key: string, bytes: Uint8Array): Promise<ObjectInfo | undefined> {
  const object = await retried(r2, key, () => r2.bucket.get(key));
  if (!object) return undefined;
  try {
    return (await isSameBody(object, async () => new Uint8Array(await object.arrayBuffer()), bytes)) ? info(object) : undefined;
  } finally {
    if (!object.bodyUsed) await object.body.cancel();
  }
}

async function statObject(r2: R2Connection, key: string): Promise<ObjectInfo> {
  const object = await retried(r2, key, () => r2.bucket.head(key));
  if (!object) throw new PathNotFoundError(key, NAME);
  return info(object);
}

async function listObjects(r2: R2Connection, prefix: string, opts: ListOptions = {}): Promise<ListResult> {
  const options: R2ListOptions = { prefix, limit: Math.max(1, Math.min(opts.limit ?? 1000, 1000)) };
  if (opts.cursor !== undefined) options.cursor = opts.cursor;
  const page = await retried(r2, prefix, () => r2.bucket.list(options));
  const keys = page.objects.map((o) => o.key);
  return page.truncated ? { keys, cursor: page.cursor } : { keys };
}

async function deleteObjects(r2: R2Connection, keys: string[]): Promise<void> {
  // The binding deletes at most 1000 keys per call.
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    await retried(r2, batch.join(","), () => r2.bucket.delete(batch));
  }
}

function multipartUpload(r2: R2Connection, upload: R2MultipartUpload): MultipartUpload {
  /** One call on the upload, its R2 error codes mapped, retried. */
  const call = <T>(op: () => Promise<T>, replayable = true) =>
    retried(
      r2,
      upload.key,
      async () => {
        try {
          return await op();
        } catch (err) {
          throw mapMultipartError(err, upload);
        }
      },
      replayable,
    );
  return {
    key: upload.key,
    uploadId: upload.uploadId,
    uploadPart: (partNumber, body) =>
      call(
        async () => {
          const part = await upload.uploadPart(partNumber, r2Body(body));
          return { partNumber: part.partNumber, etag: part.etag };
        },
        body instanceof Uint8Array,
      ),
    complete: (parts) => call(async () => info(await upload.complete(parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag }))))),
    abort: () =>
      retried(r2, upload.key, async () => {
        try {
          await upload.abort();
        } catch (err) {
          // Aborting what is already gone is not an error (as S3's AbortMultipartUpload on R2).
          if (r2Code(err) !== R2_CODES.noSuchUpload) throw err;
        }
      }),
  };
}

function info(object: R2Object): ObjectInfo {
  return { key: object.key, size: object.size, etag: object.etag, modified: object.uploaded };
}

/** The binding needs a stream's length up front (production R2 refuses a stream of unknown length). */
function r2Body(body: PutBody): ReadableStream | Uint8Array | string {
  return isSizedStream(body) ? fixedLength(body) : body;
}

function resolvedRange(key: string, range: R2Range | undefined, size: number, asked: ByteRange): { offset: number; length: number } {
  if (range && "offset" in range && range.offset !== undefined && range.length !== undefined) {
    return { offset: range.offset, length: range.length };
  }
  // Older runtimes may omit the resolved range; compute it as R2 does.
  return resolveRange(key, NAME, size, asked);
}

function r2Code(err: unknown): number | undefined {
  const m = /\((\d{5})\)\s*$/.exec(String((err as Error)?.message ?? ""));
  return m?.[1] ? Number(m[1]) : undefined;
}

function mapMultipartError(err: unknown, upload: R2MultipartUpload): unknown {
  switch (r2Code(err)) {
    case R2_CODES.noSuchUpload:
      return new MultipartUnknownError(upload.key, NAME, upload.uploadId, { cause: err });
    case R2_CODES.invalidPart:
      return new InvalidPartError(upload.key, NAME, "a part is unknown or its etag is stale", { cause: err });
    case R2_CODES.invalidPartSizes:
      return new InvalidPartError(upload.key, NAME, "all parts but the last must be the same size", { cause: err });
    case R2_CODES.entityTooSmall:
      return new InvalidPartError(upload.key, NAME, "a part other than the last is smaller than 5 MiB", { cause: err });
    default:
      return err;
  }
}
