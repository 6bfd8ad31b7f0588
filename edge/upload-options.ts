/**
 * The options of `createUploadApp` (edge/worker.ts) that the Durable Object needs too: binding
 * names, limits and the `onUploadComplete` hook. The object is not built by the app (the runtime
 * constructs it from the exported class), so it cannot be handed them; it finds them here. The
 * host calls createUploadApp at the top level of its Worker module, which every isolate of the
 * Worker evaluates before it runs anything (the object's requests and alarms included), so each
 * isolate has registered the same options before an object reads them.
 */
import type { UploadCompletedEvent } from "./events.ts";
import type { Env } from "./env.ts";

/** Overrides of the config vars (edge/config.ts), as numbers; each is validated as its var is. */
export interface UploadLimits {
  /** TUS_MAX_SIZE: largest Upload-Length, bytes. */
  maxUploadSize?: number;
  /** PART_SIZE: storage part size, bytes (5 MiB .. 5 GiB). */
  partSize?: number;
  /** MAX_PATCH_SIZE: largest request body, bytes. */
  maxPatchSize?: number;
  /** UPLOAD_TTL_SECONDS: expiry after the last write. */
  uploadTtlSeconds?: number;
  /** BODY_IDLE_TIMEOUT_SECONDS: a stalled body is cut off after this long. */
  bodyIdleTimeoutSeconds?: number;
  /** MAX_OPEN_UPLOADS_PER_NAMESPACE. */
  maxOpenUploadsPerNamespace?: number;
  /** MAX_OPEN_BYTES_PER_NAMESPACE, bytes. */
  maxOpenBytesPerNamespace?: number;
  /** BLOB_URL_TTL_SECONDS: lifetime of the signed blob links the edge mints. */
  blobUrlTtlSeconds?: number;
}

/** Names of the host's bindings, when they are not the defaults. */
export interface UploadBindings {
  /** Durable Object namespace of `UploadObject` (default `UPLOADS`). */
  uploads?: string;
  /** R2 bucket (default `BUCKET`; unused with STORAGE=s3). */
  bucket?: string;
  /** Durable Object namespace of `NamespaceObject` (default `NAMESPACES`; absent: no namespace limits). */
  namespaces?: string;
  /** Queue producer for completion events (default `UPLOAD_EVENTS`; absent: no queue). */
  events?: string;
}

/** What an `onUploadComplete` hook may use to outlive its call (the Durable Object's `waitUntil`). */
export interface UploadEventContext {
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Called in the upload's Durable Object, at least once per finished upload (a throw makes the
 * object's alarm call it again with backoff; so does a crash before it returned): be idempotent,
 * keyed by `eventKey(event)` or `event.id`. `env` is the Worker's env as the edge sees it.
 */
export type UploadCompleteHandler = (event: UploadCompletedEvent, env: Env, ctx: UploadEventContext) => Promise<void> | void;

/** The options the Durable Object reads (a subset of createUploadApp's). */
export interface ObjectOptions {
  bindings?: UploadBindings | undefined;
  limits?: UploadLimits | undefined;
  onUploadComplete?: UploadCompleteHandler | undefined;
}

const LIMIT_VARS: Record<keyof UploadLimits, keyof Env> = {
  maxUploadSize: "TUS_MAX_SIZE",
  partSize: "PART_SIZE",
  maxPatchSize: "MAX_PATCH_SIZE",
  uploadTtlSeconds: "UPLOAD_TTL_SECONDS",
  bodyIdleTimeoutSeconds: "BODY_IDLE_TIMEOUT_SECONDS",
  maxOpenUploadsPerNamespace: "MAX_OPEN_UPLOADS_PER_NAMESPACE",
  maxOpenBytesPerNamespace: "MAX_OPEN_BYTES_PER_NAMESPACE",
  blobUrlTtlSeconds: "BLOB_URL_TTL_SECONDS",
};

/**
 * A function from the host's env to the edge's view of it: bindings under the names the edge uses
 * (BUCKET, UPLOADS, NAMESPACES, UPLOAD_EVENTS) and limits as the vars getConfig parses, so every
 * module below reads one Env shape. Without overrides the env itself is returned (caches keyed by
 * it keep working); otherwise one view per env object, built once.
 */
export function envResolver(opts: Pick<ObjectOptions, "bindings" | "limits">): (env: object) => Env {
  const renames: [keyof Env, string][] = [];
  const b = opts.bindings ?? {};
  if (b.uploads && b.uploads !== "UPLOADS") renames.push(["UPLOADS", b.uploads]);
  if (b.bucket && b.bucket !== "BUCKET") renames.push(["BUCKET", b.bucket]);
  if (b.namespaces && b.namespaces !== "NAMESPACES") renames.push(["NAMESPACES", b.namespaces]);
  if (b.events && b.events !== "UPLOAD_EVENTS") renames.push(["UPLOAD_EVENTS", b.events]);
  const vars: [keyof Env, string][] = [];
  for (const [name, value] of Object.entries(opts.limits ?? {}) as [keyof UploadLimits, number | undefined][]) {
    const envName = LIMIT_VARS[name];
    if (!envName) throw new Error(`createUploadApp: unknown limit ${JSON.stringify(name)}`);
    // Not validated here: getConfig does it, and answers 500 CONFIG_INVALID naming the var.
    if (value !== undefined) vars.push([envName, String(value)]);
  }
  if (renames.length === 0 && vars.length === 0) return (env) => env as Env;
  const views = new WeakMap<object, Env>();
  return (env) => {
    let view = views.get(env);
    if (!view) {
      const source = env as Record<string, unknown>;
      const copy: Record<string, unknown> = { ...source };
      for (const [ours, theirs] of renames) copy[ours] = source[theirs];
      for (const [name, value] of vars) copy[name] = value;
      view = copy as unknown as Env;
      views.set(env, view);
    }
    return view;
  };
}

let registered: { options: ObjectOptions; resolve: (env: object) => Env } | undefined;

/** Whether `opts` says anything the Durable Object must know. */
export function concernsObject(opts: ObjectOptions): boolean {
  const b = opts.bindings ?? {};
  return opts.onUploadComplete !== undefined || opts.limits !== undefined || b.bucket !== undefined || b.namespaces !== undefined || b.events !== undefined;
}

/**
 * Registers the object-side options of this isolate's upload app. One per Worker: a second app
 * with other object-side options would leave the objects unable to tell whose they are, so that
 * throws at startup instead of mixing them.
 */
export function registerObjectOptions(opts: ObjectOptions): void {
  if (registered) {
    const same =
      registered.options.onUploadComplete === opts.onUploadComplete &&
      JSON.stringify(registered.options.limits ?? {}) === JSON.stringify(opts.limits ?? {}) &&
      JSON.stringify(registered.options.bindings ?? {}) === JSON.stringify(opts.bindings ?? {});
    if (!same) {
      throw new Error(
        "createUploadApp: a Worker has one UploadObject class, so only one upload app may set bindings.bucket/namespaces/events, limits or onUploadComplete",
      );
    }
    return;
  }
  registered = { options: opts, resolve: envResolver(opts) };
}

/** The object-side options registered in this isolate (none: the defaults, no hook). */
export function objectOptions(): { options: ObjectOptions; resolve: (env: object) => Env } {
  return registered ?? { options: {}, resolve: (env) => env as Env };
}
