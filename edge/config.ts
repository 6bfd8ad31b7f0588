/**
 * The worker's configuration, parsed once per env from wrangler vars with defaults from
 * shared/protocol.ts. A var that does not parse fails loudly (500 CONFIG_INVALID naming the var)
 * instead of silently falling back: a typo in PART_SIZE must not turn into corrupt multipart
 * uploads or surprise limits.
 */
import { DEFAULTS } from "../shared/protocol.ts";
import type { Env } from "./env.ts";
import { ApiError } from "./http/errors.ts";
import { StorageConfigError, storageChoice } from "./storage/s3-config.ts";
import { DEFAULT_BLOB_URL_TTL_SECONDS } from "./blob-url.ts";
import { webhookKeyBytes } from "./events.ts";

export interface EdgeConfig {
  /** Largest Upload-Length accepted (Tus-Max-Size). */
  maxUploadSize: number;
  /** Storage part size; every part but the last has exactly this size. */
  partSize: number;
  /** Largest PATCH (or creation-with-upload) body. */
  maxPatchSize: number;
  /** An upload expires this many seconds after its last write. */
  uploadTtlSeconds: number;
  /** A request body idle this long is cut off (edge/writer/body-chunks.ts). */
  bodyIdleTimeoutMs: number;
  /** Open (unfinished) uploads one namespace may hold; a creation past it is 429 (edge/namespace-limits.ts). */
  maxOpenUploadsPerNamespace: number;
  /** Sum of the Upload-Length of one namespace's open uploads; a creation past it is 429. */
  maxOpenBytesPerNamespace: number;
  /** HMAC secret for bearer tokens; undefined when not configured. */
  secret: string | undefined;
  allowAnonymous: boolean;
  /** Allowed CORS origins; "*" for any; empty for none. */
  corsOrigins: "*" | readonly string[];
  /** Lifetime of a signed blob link minted by the edge (edge/blob-url.ts). */
  blobUrlTtlSeconds: number;
  /** Where completion events are POSTed (edge/events.ts), when WEBHOOK_URL is set. */
  webhook: { url: string; secret: string } | undefined;
}

const GiB = 1024 * 1024 * 1024;
/** Namespace limit defaults: room for a busy uploader (a page of 100 files, a TiB of disk images), not for a runaway. */
export const DEFAULT_MAX_OPEN_UPLOADS_PER_NAMESPACE = 100;
export const DEFAULT_MAX_OPEN_BYTES_PER_NAMESPACE = 1024 * GiB;
const cache = new WeakMap<object, EdgeConfig>();

function integer(env: Env, name: keyof Env, fallback: number, min: number, max: number, unit = name.endsWith("_SECONDS") ? "seconds" : "bytes"): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (typeof raw !== "string" || !/^\d+$/.test(raw.trim())) {
    throw invalid(`${name} must be a whole number of ${unit}, got ${JSON.stringify(raw)}`);
  }
  const value = Number(raw.trim());
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be between ${min} and ${max}, got ${raw}`);
  }
  return value;
}

function invalid(message: string): ApiError {
  return new ApiError(500, "CONFIG_INVALID", `worker misconfigured: ${message}`);
}

/** Parses (and caches) the config; throws ApiError 500 CONFIG_INVALID naming the bad var. */
export function getConfig(env: Env): EdgeConfig {
  const cached = cache.get(env);
  if (cached) return cached;
  const allow = (env.ALLOW_ANONYMOUS ?? "").trim().toLowerCase();
  if (!["", "true", "false"].includes(allow)) {
    throw invalid(`ALLOW_ANONYMOUS must be "true" or "false", got ${JSON.stringify(env.ALLOW_ANONYMOUS)}`);
  }
  const origins = (env.CORS_ORIGINS ?? "").trim();
  const list = origins
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  for (const origin of list) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw invalid(`CORS_ORIGINS entries must look like https://host[:port] (no path), got ${JSON.stringify(origin)}`);
    }
  }
  const webhook = webhookConfig(env);
  try {
    // Parsed again by the driver (edge/storage/from-env.ts); checked here so a bad storage var
    // fails every request with the var's name, like every other var.
    storageChoice(env);
  } catch (err) {
    if (err instanceof StorageConfigError) throw invalid(err.message);
    throw err;
  }
  const config: EdgeConfig = {
    maxUploadSize: integer(env, "TUS_MAX_SIZE", DEFAULTS.maxUploadSize, 0, Number.MAX_SAFE_INTEGER),
    // R2: parts of at least 5 MiB, at most 5 GiB.
    partSize: integer(env, "PART_SIZE", DEFAULTS.partSize, DEFAULTS.minPartSize, 5 * GiB),
    maxPatchSize: integer(env, "MAX_PATCH_SIZE", DEFAULTS.maxPatchSize, 1, 5 * GiB),
    uploadTtlSeconds: integer(env, "UPLOAD_TTL_SECONDS", DEFAULTS.uploadTtlSeconds, 1, 10 * 365 * 24 * 3600),
    bodyIdleTimeoutMs: integer(env, "BODY_IDLE_TIMEOUT_SECONDS", DEFAULTS.bodyIdleTimeoutSeconds, 1, 3600) * 1000,
    maxOpenUploadsPerNamespace: integer(env, "MAX_OPEN_UPLOADS_PER_NAMESPACE", DEFAULT_MAX_OPEN_UPLOADS_PER_NAMESPACE, 1, 1_000_000, "uploads"),
    maxOpenBytesPerNamespace: integer(env, "MAX_OPEN_BYTES_PER_NAMESPACE", DEFAULT_MAX_OPEN_BYTES_PER_NAMESPACE, 1, Number.MAX_SAFE_INTEGER),
    secret: env.UPLOAD_SECRET ? env.UPLOAD_SECRET : undefined,
    allowAnonymous: allow === "true",
    corsOrigins: list.includes("*") ? "*" : list,
    blobUrlTtlSeconds: integer(env, "BLOB_URL_TTL_SECONDS", DEFAULT_BLOB_URL_TTL_SECONDS, 1, 366 * 24 * 3600),
    webhook,
  };
  cache.set(env, config);
  return config;
}

/**
 * WEBHOOK_URL and WEBHOOK_SECRET, checked together: an unsigned webhook would let anyone who
 * learns the URL forge completions, so a URL without a secret is a config error, not a silent
 * unsigned POST.
 */
function webhookConfig(env: Env): EdgeConfig["webhook"] {
  const url = (env.WEBHOOK_URL ?? "").trim();
  if (url === "") return undefined;
  if (!/^https?:\/\/[^/\s]+/.test(url) || !URL.canParse(url)) throw invalid(`WEBHOOK_URL must be an http(s) URL, got ${JSON.stringify(url)}`);
  const secret = env.WEBHOOK_SECRET ?? "";
  if (secret === "") throw invalid("WEBHOOK_URL is set but WEBHOOK_SECRET is not (`wrangler secret put WEBHOOK_SECRET`)");
  try {
    webhookKeyBytes(secret);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  return { url, secret };
}
