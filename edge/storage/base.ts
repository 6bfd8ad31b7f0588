/**
 * The one wrapper every driver factory returns its implementation through (distribution's
 * registry/storage/driver/base): it validates keys before a store sees them, so a crafted key
 * can never address something outside the layout, and it turns any exception a store throws
 * into a StorageError, so callers handle one error vocabulary whatever the backend.
 */
import { InvalidPartError, InvalidPathError, MULTIPART_LIMITS, StorageDriverError, StorageError, type MultipartUpload, type StorageDriver } from "./driver.ts";

/** Longest key accepted: S3's and R2's limit is 1024 bytes; keys here are ASCII. */
export const MAX_KEY_LENGTH = 1024;

/** One key segment: distribution's PathRegexp component, `[A-Za-z0-9._-]+`. */
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Why `key` is not a valid object key, or undefined when it is. */
export function keyProblem(key: string): string | undefined {
  if (key === "") return "empty";
  if (key.length > MAX_KEY_LENGTH) return `longer than ${MAX_KEY_LENGTH} characters`;
  if (key.startsWith("/")) return "leading slash";
  if (key.endsWith("/")) return "trailing slash";
  return segmentsProblem(key.split("/"));
}

/** Like keyProblem for a list prefix: "" and a trailing slash are fine there. */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix === "") return undefined;
  if (prefix.length > MAX_KEY_LENGTH) return `longer than ${MAX_KEY_LENGTH} characters`;
  if (prefix.startsWith("/")) return "leading slash";
  return segmentsProblem((prefix.endsWith("/") ? prefix.slice(0, -1) : prefix).split("/"));
}

function segmentsProblem(segments: string[]): string | undefined {
  for (const s of segments) {
    if (s === "") return "empty segment";
    if (s === "." || s === "..") return `relative segment ${s}`;
    if (!SEGMENT.test(s)) return `segment ${JSON.stringify(s)} has characters outside [A-Za-z0-9._-]`;
  }
  return undefined;
}

/** Wraps a raw driver: key validation in front, error normalisation behind. */
export function withKeyValidation(raw: StorageDriver): StorageDriver {
  const name = raw.name;
  const key = (k: string): void => {
    const problem = keyProblem(k);
    if (problem) throw new InvalidPathError(k, name, problem);
  };
  const guard = async <T>(path: string, op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw normalise(err, path, name);
    }
  };
  const wrapUpload = (upload: MultipartUpload): MultipartUpload => ({
    key: upload.key,
    uploadId: upload.uploadId,
    uploadPart: (partNumber, body) =>
      guard(upload.key, () => {
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MULTIPART_LIMITS.maxParts) {
          throw new InvalidPartError(upload.key, name, `part number ${partNumber} outside 1..${MULTIPART_LIMITS.maxParts}`);
        }
        return upload.uploadPart(partNumber, body);
      }),
    complete: (parts) => guard(upload.key, () => upload.complete(parts)),
    abort: () => guard(upload.key, () => upload.abort()),
  });

  const driver: StorageDriver = {
    name,
    get: (k, options) => guard(k, async () => (key(k), raw.get(k, options))),
    put: (k, body, options) => guard(k, async () => (key(k), raw.put(k, body, options))),
    stat: (k) => guard(k, async () => (key(k), raw.stat(k))),
    list: (prefix, options) =>
      guard(prefix, async () => {
        const problem = prefixProblem(prefix);
        if (problem) throw new InvalidPathError(prefix, name, problem);
        return raw.list(prefix, options);
      }),
    delete: (...keys) =>
      guard(keys.join(","), async () => {
        keys.forEach(key);
        if (keys.length > 0) await raw.delete(...keys);
      }),
    createMultipart: (k) => guard(k, async () => (key(k), wrapUpload(await raw.createMultipart(k)))),
    resumeMultipart: (k, uploadId) => {
      key(k);
      return wrapUpload(raw.resumeMultipart(k, uploadId));
    },
  };
  const copy = raw.copy?.bind(raw);
  if (copy) {
    driver.copy = (from, to) => guard(from, async () => (key(from), key(to), copy(from, to)));
  }
  return driver;
}

function normalise(err: unknown, path: string, driver: string): StorageError {
  return err instanceof StorageError ? err : new StorageDriverError(path, driver, err);
}
