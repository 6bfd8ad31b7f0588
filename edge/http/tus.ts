/**
 * The tus routes under /files (tus 1.0.0: creation, creation-with-upload, termination, checksum;
 * docs/http-api.md): each checks what it can without the upload (version, headers, auth,
 * namespace limits) and hands the request to the upload's Durable Object, which serialises them.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { basePath } from "hono/route";
import { formatReprDigest, parseDigest, type Sha256Digest } from "../../shared/digest.ts";
import { H, OFFSET_OCTET_STREAM, TUS_CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION, parseUploadMetadata } from "../../shared/protocol.ts";
import { blobUrlQuery } from "../blob-url.ts";
import type { EdgeConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { releaseReservation, reserveUpload } from "../namespace-limits.ts";
import type { UploadObject } from "../upload-object.ts";
import type { UploadStatus } from "../upload/session.ts";
import type { AppEnv } from "./app.ts";
import { nowSeconds } from "./auth.ts";
import { ApiError, unwrap, type Outcome } from "./errors.ts";
import { bodyRequest, mergeDigest, parseLength, parseReprDigestHeader } from "./requests.ts";

/** Upload ids are the Durable Object's own id: 64 lowercase hex, nothing else reaches storage. */
const UPLOAD_ID = /^[0-9a-f]{64}$/;
/** Upload-Metadata is stored with the upload and echoed on HEAD; keep it a header's size. */
const MAX_METADATA_LENGTH = 8 * 1024;

/** Registers /files: the version check, discovery (OPTIONS, before auth), then POST, HEAD, PATCH and DELETE behind `authenticate`. */
export function registerTusRoutes(app: Hono<AppEnv>, authenticate: MiddlewareHandler<AppEnv>): void {
  app.use("/files", tusVersion);
  app.use("/files/*", tusVersion);
  app.options("/files", (c) => c.body(null, 204, discoveryHeaders(c.get("config"))));
  app.options("/files/:id", (c) => c.body(null, 204, discoveryHeaders(c.get("config"))));
  app.use("/files", authenticate);
  app.use("/files/*", authenticate);
  app.post("/files", createUpload);
  app.get("/files/:id", headUpload);
  app.patch("/files/:id", patchUpload);
  app.delete("/files/:id", async (c) => {
    unwrap(await uploadStub(c).terminate(c.get("namespace")));
    return c.body(null, 204);
  });
}

/** POST /files: a new upload (with its first bytes when the body has them), after the namespace's limits let it in. */
async function createUpload(c: Context<AppEnv>): Promise<Response> {
  const config = c.get("config");
  const env = c.get("uploadEnv");
  const namespace = c.get("namespace");
  const { length, rawMetadata, declared } = creationHeaders(c, config);
  const write = await bodyRequest(c, length, 0, true);
  const id = env.UPLOADS.newUniqueId();
  const stub = env.UPLOADS.get(id) as DurableObjectStub<UploadObject>;
  // Namespace limits (edge/namespace-limits.ts): 429 before anything is created. A zero-length
  // upload is finished at creation, never open, so it takes no slot.
  const reserved = length > 0;
  if (reserved) await reserveUpload(env, namespace, id.toString(), length, Date.now() + config.uploadTtlSeconds * 1000);
  let outcome: Awaited<ReturnType<typeof stub.create>>;
  try {
    outcome = await stub.create({
      id: id.toString(),
      namespace,
      length,
      ...(declared ? { declaredDigest: declared } : {}),
      metadata: rawMetadata,
      ...(write ? { write } : {}),
    });
  } catch (err) {
    if (reserved) await releaseUnlessCreated(env, stub, namespace, id.toString());
    throw err;
  }
  if (!outcome.ok && reserved) await releaseUnlessCreated(env, stub, namespace, id.toString());
  const status = unwrap(outcome);
  // Finished at creation (dedupe, or the whole body came with the POST): nothing stays open.
  if (reserved && status.digest) await releaseReservation(env, namespace, id.toString());
  return c.body(null, 201, {
    Location: `${mountPath(c)}/files/${id.toString()}`,
    "Upload-Length": String(length),
    ...(await statusHeaders(c, status)),
    ...limitHeaders(config),
  });
}

/** A creation's headers, each malformed one its own 4xx. */
function creationHeaders(c: Context<AppEnv>, config: EdgeConfig): { length: number; rawMetadata: string; declared: Sha256Digest | undefined } {
  if (c.req.header(H.uploadDeferLength) !== undefined) {
    throw new ApiError(400, "UPLOAD_LENGTH_INVALID", "Upload-Defer-Length is not supported (creation-defer-length is not advertised); send Upload-Length");
  }
  if (c.req.header("upload-concat") !== undefined) throw new ApiError(400, "BAD_REQUEST", "Upload-Concat is not supported");
  const length = parseLength(c.req.header(H.uploadLength), config);
  const rawMetadata = c.req.header(H.uploadMetadata) ?? "";
  if (rawMetadata.length > MAX_METADATA_LENGTH) throw new ApiError(400, "METADATA_INVALID", `Upload-Metadata longer than ${MAX_METADATA_LENGTH} characters`);
  const metadata = parseUploadMetadata(rawMetadata);
  if (!metadata) throw new ApiError(400, "METADATA_INVALID", "Upload-Metadata must be comma-separated `key base64` pairs with unique keys");
  let declared: Sha256Digest | undefined;
  if (metadata.digest !== undefined) {
    declared = parseDigest(metadata.digest);
    if (!declared) throw new ApiError(400, "DIGEST_MALFORMED", "metadata digest must be sha256:<64 lowercase hex>");
  }
  declared = mergeDigest(declared, parseReprDigestHeader(c.req.header(H.reprDigest)));
  return { length, rawMetadata, declared };
}

/** HEAD /files/:id: the upload's offset, length and metadata. */
async function headUpload(c: Context<AppEnv>): Promise<Response> {
  // Hono answers HEAD with the GET route; tus defines only HEAD on an upload.
  if (c.req.method !== "HEAD") {
    throw new ApiError(405, "METHOD_NOT_ALLOWED", "use HEAD to read an upload's offset", { headers: { Allow: "HEAD, PATCH, DELETE, OPTIONS" } });
  }
  const status = unwrap(await uploadStub(c).head(c.get("namespace")));
  const headers: Record<string, string> = {
    "Upload-Length": String(status.length),
    "Cache-Control": "no-store",
    ...(await statusHeaders(c, status)),
    ...limitHeaders(c.get("config")),
  };
  if (status.metadata) headers["Upload-Metadata"] = status.metadata;
  return c.body(null, 200, headers);
}

/** PATCH /files/:id: bytes at an offset. */
async function patchUpload(c: Context<AppEnv>): Promise<Response> {
  const contentType = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (contentType !== OFFSET_OCTET_STREAM) {
    throw new ApiError(415, "CONTENT_TYPE_INVALID", `PATCH needs Content-Type: ${OFFSET_OCTET_STREAM}`);
  }
  const rawOffset = c.req.header(H.uploadOffset);
  if (rawOffset === undefined || !/^\d{1,16}$/.test(rawOffset) || !Number.isSafeInteger(Number(rawOffset))) {
    throw new ApiError(400, "BAD_REQUEST", "Upload-Offset must be a non-negative integer");
  }
  const stub = uploadStub(c);
  const write = await bodyRequest(c, undefined, Number(rawOffset), false);
  const reprDigest = parseReprDigestHeader(c.req.header(H.reprDigest));
  const status = unwrap(
    await stub.patch(c.get("namespace"), {
      ...(write ?? { offset: Number(rawOffset), contentLength: 0, body: null }),
      ...(reprDigest ? { reprDigest } : {}),
    }),
  );
  return c.body(null, 204, await statusHeaders(c, status));
}

/**
 * The path this app is mounted at, "" at the root: `/uploads` when a host did
 * `host.route("/uploads", app)`. Read from the route that matched, so it also holds for a mount
 * under a parameter (`/:tenant/uploads`).
 */
function mountPath(c: Context<AppEnv>): string {
  return basePath(c).replace(/\/+$/, "");
}

/** tus: every /files response but OPTIONS carries Tus-Resumable; every request but OPTIONS (and GET) must send 1.0.0. */
const tusVersion: MiddlewareHandler<AppEnv> = async (c, next) => {
  const method = c.req.method;
  if (method !== "OPTIONS" && method !== "GET") {
    const version = c.req.header(H.tusResumable);
    if (version !== TUS_VERSION) {
      const message = version ? `Tus-Resumable ${version} is not supported; use ${TUS_VERSION}` : "Tus-Resumable header required";
      throw new ApiError(412, "TUS_VERSION_UNSUPPORTED", message, {
        headers: { "Tus-Version": TUS_VERSION },
      });
    }
  }
  await next();
  if (method !== "OPTIONS") c.res.headers.set("Tus-Resumable", TUS_VERSION);
};

/** Our limits, advertised on OPTIONS/POST/HEAD so clients can size their chunks. */
function limitHeaders(config: EdgeConfig): Record<string, string> {
  return {
    "Tus-Max-Size": String(config.maxUploadSize),
    "Upload-Part-Size": String(config.partSize),
    "Upload-Max-Chunk-Size": String(config.maxPatchSize),
  };
}

function discoveryHeaders(config: EdgeConfig): Record<string, string> {
  return {
    "Tus-Resumable": TUS_VERSION,
    "Tus-Version": TUS_VERSION,
    "Tus-Extension": TUS_EXTENSIONS.join(","),
    "Tus-Checksum-Algorithm": TUS_CHECKSUM_ALGORITHMS.join(","),
    ...limitHeaders(config),
  };
}

/**
 * Status headers shared by POST, HEAD and PATCH answers. A finished upload also gets
 * `Upload-Blob-Url`, a signed link to its blob for the caller's namespace (edge/blob-url.ts),
 * when the edge has a secret to sign with: a link the page can hand to a fresh browser.
 */
async function statusHeaders(c: Context<AppEnv>, status: UploadStatus): Promise<Record<string, string>> {
  const headers: Record<string, string> = {
    "Upload-Offset": String(status.offset),
    "Upload-Expires": new Date(status.expiresAt).toUTCString(),
  };
  if (status.digest) {
    const blobPath = `${mountPath(c)}/blobs/${status.digest}`;
    headers["Repr-Digest"] = formatReprDigest(status.digest);
    headers["Content-Location"] = blobPath;
    const config = c.get("config");
    if (config.secret) {
      const query = await blobUrlQuery(config.secret, c.get("namespace"), status.digest, nowSeconds() + config.blobUrlTtlSeconds);
      headers[H.uploadBlobUrl] = `${blobPath}?${query}`;
    }
  }
  return headers;
}

/**
 * After a failed creation: frees the reservation when no upload came of it. A creation can fail
 * after the upload exists (its creation-with-upload body broke off, say); that upload is open and
 * keeps its slot until it is finished, cancelled or expires.
 */
async function releaseUnlessCreated(env: Env, stub: DurableObjectStub<UploadObject>, namespace: string, id: string): Promise<void> {
  const exists = await stub.head(namespace).then(
    (outcome: Outcome<unknown>) => outcome.ok || outcome.error.status !== 404,
    () => true,
  );
  if (!exists) await releaseReservation(env, namespace, id);
}

/** The upload's Durable Object; a malformed id is a 404 (idFromString would throw a 500). */
function uploadStub(c: Context<AppEnv>): DurableObjectStub<UploadObject> {
  const id = c.req.param("id") ?? "";
  if (!UPLOAD_ID.test(id)) throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
  let doId: DurableObjectId;
  try {
    doId = c.get("uploadEnv").UPLOADS.idFromString(id);
  } catch {
    throw new ApiError(404, "UPLOAD_UNKNOWN", "upload unknown");
  }
  return c.get("uploadEnv").UPLOADS.get(doId) as DurableObjectStub<UploadObject>;
}
