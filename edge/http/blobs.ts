/**
 * HEAD|GET /blobs/sha256:<hex>: a blob is served only when it is linked in the caller's
 * namespace (else 404, the same answer as for a blob that does not exist), with single byte
 * ranges (206 / 416) and the digest as a strong ETag, since content addressing makes it one.
 *
 * Blobs are whatever uploaders sent, served from the API's own origin, so every answer is
 * hardened against being rendered there: `X-Content-Type-Options: nosniff`,
 * `Content-Security-Policy: sandbox` (no script, no same-origin access even if a browser renders
 * it), `Content-Disposition: attachment` (with the uploader's file name when known, edge/registry/blob-meta.ts),
 * and `Vary: Authorization`, since the same URL answers differently per namespace.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { formatReprDigest, parseDigest, type Sha256Digest } from "../../shared/digest.ts";
import { verifyBlobUrl } from "../blob-url.ts";
import { contentDisposition, readBlobMeta } from "../registry/blob-meta.ts";
import type { Env } from "../env.ts";
import type { AppEnv } from "./app.ts";
import { nowSeconds } from "./auth.ts";
import { ApiError } from "./errors.ts";
import { isLinked, openBlob } from "../registry/blobs.ts";
import { isValidNamespace } from "../registry/paths.ts";
import { driverFor } from "../storage/from-env.ts";
import { InvalidRangeError, PathNotFoundError } from "../storage/driver.ts";

/**
 * Registers /blobs: the hardening around everything (auth failures included), then the caller's
 * own `authenticate`, or a signed link (edge/blob-url.ts), which is its own grant.
 */
export function registerBlobRoutes(app: Hono<AppEnv>, authenticate: MiddlewareHandler<AppEnv>): void {
  app.use("/blobs/*", blobResponseHeaders);
  app.use("/blobs/*", (c, next) => (c.req.query("sig") !== undefined ? next() : authenticate(c, next)));
  app.get("/blobs/:ref", getBlob);
}

/** GET|HEAD /blobs/:ref, in the caller's namespace or the one a signed link names. */
async function getBlob(c: Context<AppEnv>): Promise<Response> {
  const digest = parseDigest(c.req.param("ref") ?? "");
  if (c.req.query("sig") !== undefined) {
    // The same 403 for a tampered, foreign, expired or unknown link: it tells nothing.
    const secret = c.get("config").secret;
    const result =
      digest && secret
        ? await verifyBlobUrl(secret, digest, { ns: c.req.query("ns"), exp: c.req.query("exp"), sig: c.req.query("sig") }, nowSeconds())
        : undefined;
    if (!result?.ok || !isValidNamespace(result.namespace)) throw new ApiError(403, "FORBIDDEN", "link invalid or expired");
    if (!digest) throw new ApiError(404, "BLOB_UNKNOWN", "blob unknown");
    return readLinkedBlob(c.get("uploadEnv"), result.namespace, digest, c.req.raw);
  }
  if (!digest) throw new ApiError(404, "BLOB_UNKNOWN", "blob unknown");
  return readLinkedBlob(c.get("uploadEnv"), c.get("namespace"), digest, c.req.raw);
}

/** A resolved range of a blob of known size: first byte and length, both within the blob. */
export interface ResolvedRange {
  offset: number;
  length: number;
}

/** Decimal digits as a number; Infinity when past any safe integer (no blob is that large). */
function position(digits: string): number {
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : Infinity;
}

/**
 * Resolves a `Range` header against a blob of `size` bytes (RFC 9110 section 14):
 * - undefined: serve the whole blob with 200. That is the answer to no Range, a unit other than
 *   bytes, several ranges (allowed to be ignored), and a malformed or invalid one (last < first),
 *   which section 14.2 lets a server ignore: a client that cannot write a range gets the blob.
 * - "unsatisfiable": 416. A first position at or past the end (including any number beyond a safe
 *   integer), or a zero-length suffix.
 * - a range within the blob: a last position past the end (whatever its size) is clamped to the
 *   end and a suffix longer than the blob means all of it, as section 14.1.2 says.
 * A zero-length blob has no range to serve: any satisfiable form gets the (empty) whole.
 */
export function resolveRange(header: string | null | undefined, size: number): ResolvedRange | undefined | "unsatisfiable" {
  if (!header) return undefined;
  const unit = /^\s*bytes\s*=\s*(.*?)\s*$/i.exec(header);
  if (!unit) return undefined;
  const set = unit[1] ?? "";
  if (set.includes(",")) return undefined;
  const spec = /^(\d*)-(\d*)$/.exec(set);
  if (!spec) return undefined;
  const [, first = "", last = ""] = spec;
  if (first === "" && last === "") return undefined;
  if (first === "") {
    const suffix = position(last);
    if (suffix === 0) return "unsatisfiable";
    if (size === 0) return undefined;
    const length = Math.min(suffix, size);
    return { offset: size - length, length };
  }
  const from = position(first);
  const to = last === "" ? Infinity : position(last);
  if (to < from) return undefined;
  if (from >= size) return "unsatisfiable";
  return { offset: from, length: Math.min(to, size - 1) - from + 1 };
}

/**
 * The hardening every /blobs answer carries, errors included (a 404 or 401 at a blob URL is as
 * cacheable and as renderable as the blob): it runs around auth and the route. Error answers are
 * also `no-store`, so a 404 seen before an upload finished is not served after.
 */
const blobResponseHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  // Responses from fetch() or a Durable Object have immutable headers: copy before touching.
  const res = new Response(c.res.body, c.res);
  res.headers.set("X-Content-Type-Options", "nosniff");
  res.headers.set("Content-Security-Policy", "sandbox");
  res.headers.append("Vary", "Authorization");
  if (res.status >= 400 && !res.headers.has("Cache-Control")) res.headers.set("Cache-Control", "no-store");
  c.res = undefined;
  c.res = res;
};

function notSatisfiable(headers: Headers, size: number): ApiError {
  headers.set("Content-Range", `bytes */${size}`);
  return new ApiError(416, "BAD_REQUEST", "range not satisfiable", { headers: Object.fromEntries(headers) });
}

/**
 * The blob answer. Order as RFC 9110 section 13.2.2 evaluates it: existence, then If-None-Match
 * (304 whatever the Range), then Range for GET only (HEAD ignores it, section 14.2), with
 * If-Range deciding whether the Range counts.
 */
async function readLinkedBlob(env: Env, namespace: string, digest: Sha256Digest, request: Request): Promise<Response> {
  const driver = driverFor(env);
  // The meta read runs beside the link check; it is used only once the link is confirmed.
  const [linked, meta] = await Promise.all([isLinked(driver, namespace, digest), readBlobMeta(driver, namespace, digest)]);
  if (!linked) throw new ApiError(404, "BLOB_UNKNOWN", "blob unknown");
  const etag = `"${digest}"`;
  const headers = new Headers({
    ETag: etag,
    "Repr-Digest": formatReprDigest(digest),
    "Accept-Ranges": "bytes",
    "Content-Type": "application/octet-stream",
    "Content-Disposition": contentDisposition(meta.filename),
    "Cache-Control": "private, max-age=31536000, immutable",
    "Docker-Content-Digest": digest,
  });
  const inm = request.headers.get("if-none-match");
  if (inm && inm.split(",").some((v) => v.trim() === etag || v.trim() === "*")) return new Response(null, { status: 304, headers });
  if (request.method === "HEAD") {
    headers.set("Content-Length", String(linked.size));
    return new Response(null, { status: 200, headers });
  }
  // If-Range with another validator (or a date: blobs have no Last-Modified): serve the whole blob.
  const ifRange = request.headers.get("if-range")?.trim();
  const range = ifRange && ifRange !== etag ? undefined : resolveRange(request.headers.get("range"), linked.size);
  if (range === "unsatisfiable") throw notSatisfiable(headers, linked.size);
  try {
    const blob = await openBlob(driver, digest, range);
    headers.set("Content-Length", String(blob.range ? blob.range.length : blob.size));
    if (blob.range) {
      headers.set("Content-Range", `bytes ${blob.range.offset}-${blob.range.offset + blob.range.length - 1}/${blob.size}`);
      return new Response(blob.body, { status: 206, headers });
    }
    return new Response(blob.body, { status: 200, headers });
  } catch (err) {
    if (err instanceof PathNotFoundError) throw new ApiError(404, "BLOB_UNKNOWN", "blob unknown");
    if (err instanceof InvalidRangeError) throw notSatisfiable(headers, linked.size);
    throw err;
  }
}
