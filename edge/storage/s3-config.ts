/**
 * Which store the worker writes to, from its vars and secrets:
 *
 *   STORAGE=r2 (default)   the R2 bucket binding BUCKET; the move at finish streams the blob
 *                          through the worker (the binding has no copy)
 *   STORAGE=s3             an S3-compatible store over its REST API; the move is server-side
 *     S3_ENDPOINT          https://s3.<region>.amazonaws.com, https://<account>.r2.cloudflarestorage.com,
 *                          http://127.0.0.1:9000 ...
 *     S3_REGION            the bucket's region ("auto" on R2; default "auto" for an R2 endpoint)
 *     S3_BUCKET
 *     S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY   (secrets: `wrangler secret put ...`)
 *     S3_SESSION_TOKEN     optional, temporary credentials
 *     S3_FORCE_PATH_STYLE  "true"/"false"; default true for IP/localhost endpoints
 *     S3_REQUEST_TIMEOUT_SECONDS   optional, a request's time to answer before it is retried (default 30)
 *     S3_MAX_ATTEMPTS      optional, attempts per request on transient faults, first included (default 6)
 *
 * A missing or malformed var is a StorageConfigError naming it: a typo must not silently send
 * uploads to another store.
 */
import type { S3DriverOptions } from "./s3.ts";

/** The vars read here (a subset of the worker's Env). */
export interface StorageVars {
  STORAGE?: string;
  S3_ENDPOINT?: string;
  S3_REGION?: string;
  S3_BUCKET?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  S3_SESSION_TOKEN?: string;
  S3_FORCE_PATH_STYLE?: string;
  S3_REQUEST_TIMEOUT_SECONDS?: string;
  S3_MAX_ATTEMPTS?: string;
}

export type StorageChoice = { kind: "r2" } | { kind: "s3"; options: S3DriverOptions };

/** A storage var is missing or malformed. */
export class StorageConfigError extends Error {
  override readonly name = "StorageConfigError";
  constructor(
    /** The var to fix. */
    readonly variable: keyof StorageVars,
    message: string,
  ) {
    super(message);
  }
}

/** Parses the storage vars; throws StorageConfigError naming the first bad one. */
export function storageChoice(vars: StorageVars): StorageChoice {
  const kind = (vars.STORAGE ?? "").trim().toLowerCase() || "r2";
  if (kind === "r2") return { kind: "r2" };
  if (kind !== "s3") throw new StorageConfigError("STORAGE", `STORAGE must be "r2" or "s3", got ${JSON.stringify(vars.STORAGE)}`);

  const required = (name: keyof StorageVars, what: string): string => {
    const value = (vars[name] ?? "").trim();
    if (!value) throw new StorageConfigError(name, `STORAGE=s3 needs ${name} (${what})`);
    return value;
  };
  const endpoint = required("S3_ENDPOINT", "the store's URL, e.g. https://s3.us-east-1.amazonaws.com");
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new StorageConfigError("S3_ENDPOINT", `S3_ENDPOINT must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  if (!/^https?:$/.test(url.protocol) || (url.pathname !== "/" && url.pathname !== "") || url.search) {
    throw new StorageConfigError(
      "S3_ENDPOINT",
      `S3_ENDPOINT must be an http(s) URL without path or query (the bucket goes in S3_BUCKET), got ${JSON.stringify(endpoint)}`,
    );
  }
  const isR2 = url.hostname.endsWith(".r2.cloudflarestorage.com");
  const region = (vars.S3_REGION ?? "").trim() || (isR2 ? "auto" : "");
  if (!region) throw new StorageConfigError("S3_REGION", 'STORAGE=s3 needs S3_REGION (the bucket\'s region, e.g. us-east-1; "auto" on R2)');
  const bucket = required("S3_BUCKET", "the bucket name");
  // Loosely S3's naming rules (legacy AWS names may hold capitals and "_"): a URL or a path
  // pasted here fails now, not later as a confusing signature error.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/.test(bucket)) {
    throw new StorageConfigError("S3_BUCKET", `S3_BUCKET must be a bucket name (letters, digits, ".", "-", "_"), got ${JSON.stringify(bucket)}`);
  }
  const accessKeyId = required("S3_ACCESS_KEY_ID", "secret: wrangler secret put S3_ACCESS_KEY_ID");
  const secretAccessKey = required("S3_SECRET_ACCESS_KEY", "secret: wrangler secret put S3_SECRET_ACCESS_KEY");

  const options: S3DriverOptions = { endpoint: url.origin, region, bucket, accessKeyId, secretAccessKey };
  const token = (vars.S3_SESSION_TOKEN ?? "").trim();
  if (token) options.sessionToken = token;
  const pathStyle = (vars.S3_FORCE_PATH_STYLE ?? "").trim().toLowerCase();
  if (pathStyle !== "") {
    if (pathStyle !== "true" && pathStyle !== "false") {
      throw new StorageConfigError("S3_FORCE_PATH_STYLE", `S3_FORCE_PATH_STYLE must be "true" or "false", got ${JSON.stringify(vars.S3_FORCE_PATH_STYLE)}`);
    }
    options.forcePathStyle = pathStyle === "true";
  }
  const positive = (name: "S3_REQUEST_TIMEOUT_SECONDS" | "S3_MAX_ATTEMPTS", what: string): number | undefined => {
    const value = (vars[name] ?? "").trim();
    if (value === "") return undefined;
    if (!/^[1-9]\d*$/.test(value)) throw new StorageConfigError(name, `${name} must be a positive whole number (${what}), got ${JSON.stringify(vars[name])}`);
    return Number(value);
  };
  const timeout = positive("S3_REQUEST_TIMEOUT_SECONDS", "seconds");
  if (timeout !== undefined) options.requestTimeoutMs = timeout * 1000;
  const attempts = positive("S3_MAX_ATTEMPTS", "attempts, the first included");
  if (attempts !== undefined) options.retry = { attempts };
  return { kind: "s3", options };
}
