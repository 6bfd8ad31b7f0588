/**
 * An in-memory driver for unit tests in Node, as strict as R2 where R2 is strict: multipart
 * parts must be ascending, every part but the last the same size and at least 5 MiB (R2 errors
 * 10048 and 10011), stale or unknown part etags are refused (10025), and parts of an
 * incomplete upload cannot be read. A test that passes here should not be rejected by R2.
 */
import { withKeyValidation } from "./base.ts";
import { bodyBytes, bytesStream, sha256Hex } from "./body.ts";
import {
  BadDigestError,
  InvalidPartError,
  MULTIPART_LIMITS,
  MultipartUnknownError,
  PathNotFoundError,
  PreconditionFailedError,
  resolveRange,
  type GetResult,
  type MultipartUpload,
  type ObjectInfo,
  type StorageDriver,
  type UploadedPart,
} from "./driver.ts";

const NAME = "memory";

interface Stored {
  bytes: Uint8Array;
  etag: string;
  modified: Date;
}

export interface MemoryDriverOptions {
  /**
   * Offer a server-side `copy` like an S3 store (default true). Pass false to behave like the R2
   * binding, which has none.
   */
  copy?: boolean;
}

/** A fresh, empty in-memory store behind the key-validating wrapper. */
export function createMemoryDriver(options: MemoryDriverOptions = {}): StorageDriver {
  const objects = new Map<string, Stored>();
  const uploads = new Map<string, { key: string; parts: Map<number, Stored> }>();

  const info = (key: string, o: Stored): ObjectInfo => ({ key, size: o.bytes.length, etag: o.etag, modified: o.modified });
  const found = (key: string): Stored => {
    const o = objects.get(key);
    if (!o) throw new PathNotFoundError(key, NAME);
    return o;
  };
  const store = (key: string, bytes: Uint8Array): ObjectInfo => {
    // Copy: callers (the writer) reuse their buffers once a put has resolved.
    const o = { bytes: bytes.slice(), etag: randomTag(), modified: new Date() };
    objects.set(key, o);
    return info(key, o);
  };

  const handle = (key: string, uploadId: string): MultipartUpload => {
    const open = () => {
      const u = uploads.get(uploadId);
      if (!u || u.key !== key) throw new MultipartUnknownError(key, NAME, uploadId);
      return u;
    };
    return {
      key,
      uploadId,
      async uploadPart(partNumber, body) {
        const bytes = (await bodyBytes(body)).slice();
        const part = { bytes, etag: randomTag(), modified: new Date() };
        open().parts.set(partNumber, part);
        return { partNumber, etag: part.etag };
      },
      async complete(parts) {
        const u = open();
        const chosen = checkParts(key, u.parts, parts);
        const total = chosen.reduce((n, p) => n + p.bytes.length, 0);
        const out = new Uint8Array(total);
        let at = 0;
        for (const p of chosen) {
          out.set(p.bytes, at);
          at += p.bytes.length;
        }
        uploads.delete(uploadId);
        return store(key, out);
      },
      async abort() {
        uploads.delete(uploadId);
      },
    };
  };

  const raw: StorageDriver = {
    name: NAME,
    async get(key, opts = {}) {
      const o = found(key);
      const result: GetResult = { ...info(key, o), body: bytesStream(o.bytes) };
      if (opts.range) {
        const r = resolveRange(key, NAME, o.bytes.length, opts.range);
        result.body = bytesStream(o.bytes.slice(r.offset, r.offset + r.length));
        result.range = r;
      }
      return result;
    },
    async put(key, body, opts = {}) {
      const bytes = await bodyBytes(body);
      if (opts.sha256 !== undefined && (await sha256Hex(bytes)) !== opts.sha256.toLowerCase()) {
        throw new BadDigestError(key, NAME);
      }
      const current = objects.get(key);
      if (opts.onlyIf?.doesNotExist && current) throw new PreconditionFailedError(key, NAME);
      if (opts.onlyIf?.etagMatches !== undefined && current?.etag !== opts.onlyIf.etagMatches) {
        throw new PreconditionFailedError(key, NAME);
      }
      return store(key, bytes);
    },
    async stat(key) {
      return info(key, found(key));
    },
    async list(prefix, opts = {}) {
      const all = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
      const from = opts.cursor === undefined ? 0 : all.findIndex((k) => k > (opts.cursor as string));
      const rest = from < 0 ? [] : all.slice(from);
      const limit = Math.max(1, Math.min(opts.limit ?? 1000, 1000));
      const keys = rest.slice(0, limit);
      const last = keys.at(-1);
      return rest.length > limit && last !== undefined ? { keys, cursor: last } : { keys };
    },
    async delete(...keys) {
      for (const k of keys) objects.delete(k);
    },
    async createMultipart(key) {
      const uploadId = randomTag() + randomTag();
      uploads.set(uploadId, { key, parts: new Map() });
      return handle(key, uploadId);
    },
    resumeMultipart: handle,
  };
  if (options.copy !== false) {
    raw.copy = async (from, to) => store(to, found(from).bytes);
  }
  return withKeyValidation(raw);
}

/** R2's checks at CompleteMultipartUpload; returns the parts to assemble, in order. */
function checkParts(key: string, stored: Map<number, Stored>, parts: UploadedPart[]): Stored[] {
  if (parts.length > MULTIPART_LIMITS.maxParts) throw new InvalidPartError(key, NAME, `more than ${MULTIPART_LIMITS.maxParts} parts`);
  const chosen: Stored[] = [];
  let previous = 0;
  for (const p of parts) {
    if (p.partNumber <= previous) throw new InvalidPartError(key, NAME, "part numbers must be ascending");
    previous = p.partNumber;
    const s = stored.get(p.partNumber);
    if (!s || s.etag !== p.etag) throw new InvalidPartError(key, NAME, `part ${p.partNumber} not found (unknown or stale etag)`);
    chosen.push(s);
  }
  const size = chosen[0]?.bytes.length;
  chosen.slice(0, -1).forEach((s, i) => {
    if (s.bytes.length !== size)
      throw new InvalidPartError(
        key,
        NAME,
        `part ${parts[i]?.partNumber} is ${s.bytes.length} bytes, not ${size}: all parts but the last must be the same size`,
      );
    if (s.bytes.length < MULTIPART_LIMITS.minPartSize)
      throw new InvalidPartError(key, NAME, `part ${parts[i]?.partNumber} is smaller than ${MULTIPART_LIMITS.minPartSize} bytes`);
  });
  return chosen;
}

function randomTag(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
