/**
 * `edge-upload/worker`: the edge as a Hono app a host Worker mounts under any path, plus the
 * Durable Object classes it needs the host to export. The repo's own worker (edge/index.ts) is
 * built with it, mounted at "/".
 *
 * ```ts
 * import { Hono } from "hono";
 * import { createUploadApp, UploadObject, NamespaceObject } from "edge-upload/worker";
 * export { UploadObject, NamespaceObject };
 * const uploads = createUploadApp({ authorize: (c) => sessionNamespace(c), onUploadComplete: (event) => record(event) });
 * const app = new Hono().route("/uploads", uploads);
 * export default { fetch: app.fetch };
 * ```
 *
 * With an UPLOAD_EVENTS queue bound, the host may take the completion events from it instead:
 * `export default { fetch: app.fetch, queue: createUploadEventConsumer(onUploadComplete) }`
 * (edge/event-consumer.ts).
 *
 * Call createUploadApp at the top level of the module, as above: `onUploadComplete`, `limits` and
 * the bucket/namespaces/events binding names are read by the upload's Durable Object too, which
 * the runtime builds from the exported class, in whatever isolate it lands; the module's top
 * level is what every isolate runs first (edge/upload-options.ts).
 */
import type { Hono } from "hono";
import { createRoutes, type AppEnv, type Authorize } from "./http/app.ts";
import { concernsObject, registerObjectOptions, type UploadBindings, type UploadCompleteHandler, type UploadLimits } from "./upload-options.ts";

export { NamespaceObject } from "./namespace-limits.ts";
export { UploadObject } from "./upload-object.ts";
export { purgeExpiredUploads, type PurgeReport } from "./purge.ts";
export { onUploadError, onUploadNotFound, type AppEnv, type AppVariables, type Authorize } from "./http/app.ts";
export { eventKey, isUploadCompletedEvent, type UploadCompletedEvent } from "./events.ts";
export { createUploadEventConsumer, type UploadEventConsumerOptions, type UploadEventQueueHandler } from "./event-consumer.ts";
export type { Env as UploadEnv } from "./env.ts";
export type { UploadBindings, UploadCompleteHandler, UploadEventContext, UploadLimits } from "./upload-options.ts";

export interface UploadAppOptions {
  /**
   * Who the request is: the namespace it uploads into and reads blobs from, or null for 401.
   * Default: the edge's bearer tokens (`signToken` in edge-upload/server, UPLOAD_SECRET) and,
   * when ALLOW_ANONYMOUS=true, namespace `anonymous` for requests without Authorization.
   * Not asked for signed blob links, which carry their own grant.
   */
  authorize?: Authorize;
  /** The host's binding names, when not UPLOADS, BUCKET, NAMESPACES, UPLOAD_EVENTS. */
  bindings?: UploadBindings;
  /** Overrides of the config vars (TUS_MAX_SIZE, PART_SIZE, ...), checked as the vars are. */
  limits?: UploadLimits;
  /**
   * Runs in the upload's Durable Object for each finished upload, at least once: recorded as owed
   * with the finish and retried by the object's alarm with backoff until it returns without
   * throwing. Independent of, and in addition to, the UPLOAD_EVENTS queue and WEBHOOK_URL.
   */
  onUploadComplete?: UploadCompleteHandler;
}

/** The edge's routes (/files, /blobs, /health) as a Hono app to mount at any path. */
export function createUploadApp(options: UploadAppOptions = {}): Hono<AppEnv> {
  const objectSide = { bindings: options.bindings, limits: options.limits, onUploadComplete: options.onUploadComplete };
  if (concernsObject(objectSide)) registerObjectOptions(objectSide);
  return createRoutes({ authorize: options.authorize, bindings: options.bindings, limits: options.limits });
}
