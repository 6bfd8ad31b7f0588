/**
 * HEAD|GET /blobs/sha256:<hex>: a blob is served only when it is linked in the caller's
 * namespace (else 404, the same answer as for a blob that does not exist), with single byte
 * ranges (206 / 416) and the digest as a strong ETag, since content addressing makes it one.
 */
import { formatReprDigest, type Sha256Digest } from "../shared/digest.ts";
import type { Env } from "./env.ts";
import { ApiError } from "./errors.ts";
import { driverFor, isLinked, openBlob } from "./store.ts";
import { InvalidRangeError, PathNotFoundError, type ByteRange } from "./storage/driver.ts";

/** Parses a single `bytes=` range; undefined means "serve it all" (absent, multi-range or foreign unit). */
export function parseRange(header: string | null): ByteRange | undefined | "invalid" {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return header.includes(",") || !header.trim().startsWith("bytes=") ? undefined : "invalid";
  const [, from = "", to = ""] = m;
  if (from === "" && to === "") return "invalid";
  if (from === "") return Number(to) === 0 ? "invalid" : { suffix: Number(to) };
  const offset = Number(from);
  if (to === "") return { offset };
  if (Number(to) < offset) return "invalid";
  return { offset, length: Number(to) - offset + 1 };
}

export async function readLinkedBlob(env: Env, namespace: string, digest: Sha256Digest, request: Request): Promise<Response> {
  const driver = driverFor(env);
  const linked = await isLinked(driver, namespace, digest);
  if (!linked) throw new ApiError(404, "BLOB_UNKNOWN", "blob unknown");
  const etag = `"${digest}"`;
  const headers = new Headers({
    ETag: etag,
    "Repr-Digest": formatReprDigest(digest),
    "Accept-Ranges": "bytes",
    "Content-Type": "application/octet-stream",
    "Cache-Control": "private, max-age=31536000, immutable",
    "Docker-Content-Digest": digest,
  });
  // If-Range with another validator: serve the whole blob.
  const ifRange = request.headers.get("if-range");
  const range = ifRange && ifRange !== etag ? undefined : parseRange(request.headers.get("range"));
  if (range === "invalid" || (range && "suffix" in range ? false : range && range.offset >= linked.size)) {
    headers.set("Content-Range", `bytes */${linked.size}`);
    throw new ApiError(416, "BAD_REQUEST", "range not satisfiable", { headers: Object.fromEntries(headers) });
  }
  const inm = request.headers.get("if-none-match");
  if (inm && inm.split(",").some((v) => v.trim() === etag || v.trim() === "*")) return new Response(null, { status: 304, headers });
  if (request.method === "HEAD") {
    headers.set("Content-Length", String(linked.size));
    return new Response(null, { status: 200, headers });
  }
  try {
    const blob = await openBlob(driver, digest, range && linked.size > 0 ? range : undefined);
    headers.set("Content-Length", String(blob.range ? blob.range.length : blob.size));
    if (blob.range) {
      headers.set("Content-Range", `bytes ${blob.range.offset}-${blob.range.offset + blob.range.length - 1}/${blob.size}`);
      return new Response(blob.body, { status: 206, headers });
    }
    return new Response(blob.body, { status: 200, headers });
  } catch (err) {
    if (err instanceof PathNotFoundError) throw new ApiError(404, "BLOB_UNKNOWN", "blob unknown");
    if (err instanceof InvalidRangeError) {
      headers.set("Content-Range", `bytes */${linked.size}`);
      throw new ApiError(416, "BAD_REQUEST", "range not satisfiable", { headers: Object.fromEntries(headers) });
    }
    throw err;
  }
}
