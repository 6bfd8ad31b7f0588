/**
 * The HTTP contract (../README.md, docs/http-api.md) as Hono routes. The Worker does what needs no
 * per-upload ordering (config, CORS, tus version and header checks, auth, blob reads) and hands
 * every upload request to that upload's Durable Object, which serialises them.
 *
 * Built by a factory (createRoutes; createUploadApp in edge/worker.ts is its public face) so a host
 * Worker can mount it under any path: every URL the edge hands out (Location, Content-Location,
 * Upload-Blob-Url) is made from the path the request was routed through, never assumed to be "/".
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { basePath } from "hono/route";
import { formatReprDigest, parseDigest, type Sha256Digest } from "../../shared/digest.ts";
import { H, OFFSET_OCTET_STREAM, TUS_CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION, parseUploadMetadata } from "../../shared/protocol.ts";
import { verifyToken } from "./auth.ts";
import { blobUrlQuery, verifyBlobUrl } from "../blob-url.ts";
import { envResolver, type UploadBindings, type UploadLimits } from "../upload-options.ts";
import { blobResponseHeaders, readLinkedBlob } from "./blobs.ts";
import { getConfig, type EdgeConfig } from "../config.ts";
import { corsMiddleware } from "./cors.ts";
import type { Env } from "../env.ts";
import { ApiError, toApiError, unwrap, type Outcome } from "./errors.ts";
import { bodyRequest, mergeDigest, parseLength, parseReprDigestHeader } from "./requests.ts";
import { releaseReservation, reserveUpload } from "../namespace-limits.ts";
import { isValidNamespace } from "../registry/paths.ts";
import type { UploadObject } from "../upload-object.ts";
import type { UploadStatus } from "../upload/session.ts";

/** Hono context variables set by the middlewares below. */
export interface AppVariables {
  config: EdgeConfig;
  namespace: string;
  /** The env as the edge sees it: the host's bindings under the edge's names, limits applied (edge/upload-options.ts). */
  uploadEnv: Env;
}

export type AppEnv = { Bindings: Env; Variables: AppVariables };

/** Upload ids are the Durable Object's own id: 64 lowercase hex, nothing else reaches storage. */
const UPLOAD_ID = /^[0-9a-f]{64}$/;
const ANONYMOUS = "anonymous";
/** Upload-Metadata is stored with the upload and echoed on HEAD; keep it a header's size. */
const MAX_METADATA_LENGTH = 8 * 1024;

/**
 * Decides who a request is: the namespace it may write and read, or null for "not authorised"
 * (401). The default is the edge's own bearer tokens and ALLOW_ANONYMOUS (`defaultAuthorize`).
 */
export type Authorize = (c: Context<AppEnv>) => Promise<string | null> | string | null;

/** What createRoutes is built from (createUploadApp's options that the Worker side uses). */
export interface RouteOptions {
  authorize?: Authorize | undefined;
  bindings?: UploadBindings | undefined;
  limits?: UploadLimits | undefined;
}

/** The one error -> answer mapping, for this app and for a host app that mounts it at its root. */
export function onUploadError(err: Error): Response {
  const error = toApiError(err);
  if (error.status >= 500 && !(err instanceof ApiError)) console.error("unhandled error", err);
  return error.getResponse();
}

/** The contract's 404 for a path no route takes. */
export function onUploadNotFound(): Response {
  return new ApiError(404, "NOT_FOUND", "no such route").getResponse();
}

/** The edge's routes as a Hono app; mount it anywhere (`host.route("/uploads", createRoutes({}))`). */
export function createRoutes(options: RouteOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const resolve = envResolver(options);
  const authorize = options.authorize;

  /** Every error answer goes through the one mapping (./errors.ts), so a route never builds one by hand. */
  app.onError(onUploadError);
  app.notFound(onUploadNotFound);

  // Config first: an invalid var fails every request loudly, with the var's name.
  app.use("*", async (c, next) => {
    const env = resolve(c.env);
    c.set("uploadEnv", env);
    c.set("config", getConfig(env));
    await next();
  });

  app.use(
    "*",
    corsMiddleware((c) => (c.get("config") as EdgeConfig).corsOrigins),
  );

  const authenticate: MiddlewareHandler<AppEnv> = authorize
    ? async (c, next) => {
        const namespace = await authorize(c);
        if (namespace === null || namespace === undefined) throw unauthorized("not authorised", false);
        if (typeof namespace !== "string" || !isValidNamespace(namespace)) {
          throw new ApiError(500, "INTERNAL", "authorize returned a namespace outside the grammar (Docker repository names)");
        }
        c.set("namespace", namespace);
        return next();
      }
    : defaultAuthenticate;

  app.get("/health", (c) => c.json({ ok: true }));

  app.use("/files", tusVersion);
  app.use("/files/*", tusVersion);

  app.options("/files", (c) => c.body(null, 204, discoveryHeaders(c.get("config"))));
  app.options("/files/:id", (c) => c.body(null, 204, discoveryHeaders(c.get("config"))));

  app.use("/files", authenticate);
  app.use("/files/*", authenticate);
  // Outside auth, so a 401 or 403 at a blob URL is hardened too.
  app.use("/blobs/*", blobResponseHeaders);
  // A signed link (edge/blob-url.ts) is its own grant, checked by the route with the digest it names.
  app.use("/blobs/*", (c, next) => (c.req.query("sig") !== undefined ? next() : authenticate(c, next)));

  app.post("/files", async (c) => {
    const config = c.get("config");
    const env = c.get("uploadEnv");
    const namespace = c.get("namespace");
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
  });

  app.get("/files/:id", async (c) => {
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
  });

  app.patch("/files/:id", async (c) => {
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
  });

  app.delete("/files/:id", async (c) => {
    unwrap(await uploadStub(c).terminate(c.get("namespace")));
    return c.body(null, 204);
  });

  app.get("/blobs/:ref", async (c) => {
    const digest = parseDigest(c.req.param("ref"));
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
  });

  return app;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
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

/** The default authorisation: bearer token -> namespace; anonymous only when ALLOW_ANONYMOUS=true. */
const defaultAuthenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const config = c.get("config");
  if (!config.secret && !config.allowAnonymous) {
    throw new ApiError(
      503,
      "NOT_CONFIGURED",
      "uploads are disabled: this worker has no UPLOAD_SECRET (set it with `wrangler secret put UPLOAD_SECRET` and mint tokens with " +
        "`npm run token`) and ALLOW_ANONYMOUS is not true (for local use only)",
    );
  }
  const header = c.req.header("authorization");
  if (header === undefined) {
    if (!config.allowAnonymous) throw unauthorized("a bearer token is required", false);
    c.set("namespace", ANONYMOUS);
    return next();
  }
  const token = /^Bearer[ ]+([A-Za-z0-9_.-]+)$/i.exec(header.trim())?.[1];
  if (!token) throw unauthorized("Authorization must be `Bearer <token>`", true);
  if (!config.secret) throw unauthorized("this worker accepts no tokens (no UPLOAD_SECRET); send no Authorization header", true);
  const result = await verifyToken(config.secret, token, nowSeconds());
  if (!result.ok) throw unauthorized(`token ${result.problem === "bad-signature" ? "signature invalid" : result.problem}`, true);
  if (!isValidNamespace(result.payload.ns)) throw unauthorized("token namespace invalid", true);
  c.set("namespace", result.payload.ns);
  return next();
};

function unauthorized(message: string, invalidToken: boolean): ApiError {
  return new ApiError(401, "UNAUTHORIZED", message, {
    headers: { "WWW-Authenticate": invalidToken ? `Bearer realm="edge-upload", error="invalid_token"` : `Bearer realm="edge-upload"` },
  });
}

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

/** The default routes, mounted at "/" (edge/index.ts builds the same through createUploadApp). */
export const app = createRoutes({});
