/**
 * The driver over a Workers R2 binding. R2 is strongly consistent and enforces the multipart
 * rules itself; the binding has no copy, so `copy` is absent and callers copy by streaming
 * ranges (see edge/writer.ts). R2 reports failures as plain Errors whose message ends in a
 * numeric code, e.g. "completeMultipartUpload: ... (10048)"; those codes are mapped to the
 * typed errors of ./driver.ts here.
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
  type ByteRange,
  type GetResult,
  type MultipartUpload,
  type ObjectInfo,
  type PutBody,
  type StorageDriver,
} from "./driver.ts";

const NAME = "r2";

/** R2 error codes we act on (https://developers.cloudflare.com/r2/api/error-codes/). */
const R2_CODES = {
  noSuchUpload: 10024,
  invalidPart: 10025,
  entityTooSmall: 10011,
  invalidPartSizes: 10048,
  invalidRange: 10039,
} as const;

/** A driver over `bucket`, behind the key-validating wrapper. */
export function createR2Driver(bucket: R2Bucket): StorageDriver {
  const handle = (upload: R2MultipartUpload): MultipartUpload => ({
    key: upload.key,
    uploadId: upload.uploadId,
    async uploadPart(partNumber, body) {
      try {
        const part = await upload.uploadPart(partNumber, r2Body(body));
        return { partNumber: part.partNumber, etag: part.etag };
      } catch (err) {
        throw mapMultipartError(err, upload);
      }
    },
    async complete(parts) {
      try {
        return info(await upload.complete(parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag }))));
      } catch (err) {
        throw mapMultipartError(err, upload);
      }
    },
    async abort() {
      try {
        await upload.abort();
      } catch (err) {
        // Aborting what is already gone is not an error (as S3's AbortMultipartUpload on R2).
        if (r2Code(err) !== R2_CODES.noSuchUpload) throw err;
      }
    },
  });

  return withKeyValidation({
    name: NAME,
    async get(key, opts = {}) {
      let object: R2ObjectBody | null;
      try {
        object = await bucket.get(key, opts.range ? { range: opts.range } : {});
      } catch (err) {
        if (r2Code(err) === R2_CODES.invalidRange && opts.range) throw new InvalidRangeError(key, NAME, opts.range, { cause: err });
        throw err;
      }
      if (!object) throw new PathNotFoundError(key, NAME);
      const result: GetResult = { ...info(object), body: object.body as ReadableStream<Uint8Array> };
      const range = opts.range && resolvedRange(object.range, object.size, opts.range);
      if (range) result.range = range;
      return result;
    },
    async put(key, body, opts = {}) {
      const options: R2PutOptions = {};
      if (opts.sha256 !== undefined) options.sha256 = opts.sha256;
      const conditions: string[][] = [];
      if (opts.onlyIf?.doesNotExist) conditions.push(["if-none-match", "*"]);
      if (opts.onlyIf?.etagMatches !== undefined) conditions.push(["if-match", `"${opts.onlyIf.etagMatches}"`]);
      let object: R2Object | null;
      try {
        object =
          conditions.length > 0
            ? await bucket.put(key, r2Body(body), { ...options, onlyIf: new Headers(conditions as [string, string][]) })
            : await bucket.put(key, r2Body(body), options);
      } catch (err) {
        if (opts.sha256 !== undefined && /checksum .*did not match/i.test(String((err as Error)?.message))) {
          throw new BadDigestError(key, NAME, { cause: err });
        }
        throw err;
      }
      // R2 answers a failed condition with null rather than an error.
      if (!object) throw new PreconditionFailedError(key, NAME);
      return info(object);
    },
    async stat(key) {
      const object = await bucket.head(key);
      if (!object) throw new PathNotFoundError(key, NAME);
      return info(object);
    },
    async list(prefix, opts = {}) {
      const options: R2ListOptions = { prefix, limit: Math.max(1, Math.min(opts.limit ?? 1000, 1000)) };
      if (opts.cursor !== undefined) options.cursor = opts.cursor;
      const page = await bucket.list(options);
      const keys = page.objects.map((o) => o.key);
      return page.truncated ? { keys, cursor: page.cursor } : { keys };
    },
    async delete(...keys) {
      // The binding deletes at most 1000 keys per call.
      for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
    },
    async createMultipart(key) {
      return handle(await bucket.createMultipartUpload(key));
    },
    resumeMultipart(key, uploadId) {
      return handle(bucket.resumeMultipartUpload(key, uploadId));
    },
  });
}

function info(object: R2Object): ObjectInfo {
  return { key: object.key, size: object.size, etag: object.etag, modified: object.uploaded };
}

/**
 * The binding needs a stream's length up front (production R2 refuses a stream of unknown
 * length), which a FixedLengthStream carries.
 */
function r2Body(body: PutBody): ReadableStream | Uint8Array | string {
  if (!isSizedStream(body)) return body;
  const fixed = new FixedLengthStream(body.length);
  void body.stream.pipeTo(fixed.writable).catch(() => {
    // The failure surfaces through the put/uploadPart reading fixed.readable.
  });
  return fixed.readable;
}

function resolvedRange(range: R2Range | undefined, size: number, asked: ByteRange): { offset: number; length: number } {
  if (range && "offset" in range && range.offset !== undefined && range.length !== undefined) {
    return { offset: range.offset, length: range.length };
  }
  // Older runtimes may omit the resolved range; compute it as R2 does.
  if ("suffix" in asked) {
    const length = Math.min(asked.suffix, size);
    return { offset: size - length, length };
  }
  return { offset: asked.offset, length: Math.min(asked.length ?? size - asked.offset, size - asked.offset) };
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
