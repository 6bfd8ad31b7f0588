/**
 * The HTTP contract (../README.md, docs/http-api.md) as Hono routes. The Worker does what needs no
 * per-upload ordering (config, CORS, tus version and header checks, auth, blob reads) and hands
 * every upload request to that upload's Durable Object, which serialises them. This file is the
 * app and who a request is; the routes are registered by ./tus.ts (/files) and ./blobs.ts (/blobs).
 *
 * Built by a factory (createRoutes; createUploadApp in edge/worker.ts is its public face) so a host
 * Worker can mount it under any path: every URL the edge hands out (Location, Content-Location,
 * Upload-Blob-Url) is made from the path the request was routed through, never assumed to be "/".
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { getConfig, type EdgeConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { isValidNamespace } from "../registry/paths.ts";
import { envResolver, type UploadBindings, type UploadLimits } from "../upload-options.ts";
import { nowSeconds, verifyToken } from "./auth.ts";
import { registerBlobRoutes } from "./blobs.ts";
import { corsMiddleware } from "./cors.ts";
import { ApiError, toApiError } from "./errors.ts";
import { registerTusRoutes } from "./tus.ts";

/** Hono context variables set by the middlewares below. */
export interface AppVariables {
  config: EdgeConfig;
  namespace: string;
  /** The env as the edge sees it: the host's bindings under the edge's names, limits applied (edge/upload-options.ts). */
  uploadEnv: Env;
}

export type AppEnv = { Bindings: Env; Variables: AppVariables };

const ANONYMOUS = "anonymous";

/**
 * Decides who a request is: the namespace it may write and read, or null for "not authorised"
 * (401). The default is the edge's own bearer tokens and ALLOW_ANONYMOUS (`defaultAuthenticate`).
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

  app.get("/health", (c) => c.json({ ok: true }));

  const authenticate = options.authorize ? authenticateWith(options.authorize) : defaultAuthenticate;
  registerTusRoutes(app, authenticate);
  registerBlobRoutes(app, authenticate);
  return app;
}

/** A host's `authorize` as the middleware that sets the namespace. */
function authenticateWith(authorize: Authorize): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const namespace = await authorize(c);
    if (namespace === null || namespace === undefined) throw unauthorized("not authorised", false);
    if (typeof namespace !== "string" || !isValidNamespace(namespace)) {
      throw new ApiError(500, "INTERNAL", "authorize returned a namespace outside the grammar (Docker repository names)");
    }
    c.set("namespace", namespace);
    return next();
  };
}

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

/** The default routes, mounted at "/" (edge/index.ts builds the same through createUploadApp). */
export const app = createRoutes({});
