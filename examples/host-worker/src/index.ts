/**
 * A host Worker built on edge-upload: its own sign-in (a signed session cookie), the upload API
 * mounted under /uploads with that sign-in as `authorize`, the page in ./page (served as static
 * assets) and a consumer of the completion events, which records each finished upload in KV for
 * the page's "your uploads" list.
 *
 *   POST /api/session   {"name": "alice"} -> session cookie (a stand-in for your real sign-in)
 *   GET  /api/uploads   the signed-in user's finished uploads, each with a fresh signed link
 *   /uploads/files      tus endpoint (the element's `endpoint`), /uploads/blobs/<digest> downloads
 */
import { type Context, Hono } from "hono";
import { getSignedCookie, setSignedCookie } from "hono/cookie";
import { signBlobUrl } from "edge-upload/server";
import { createUploadApp, createUploadEventConsumer, type UploadCompleteHandler, type UploadCompletedEvent } from "edge-upload/worker";

// The runtime builds the upload's Durable Objects from these exports (wrangler.jsonc binds them).
export { NamespaceObject, UploadObject } from "edge-upload/worker";

/** This Worker's bindings (wrangler.jsonc) besides the edge's BUCKET, UPLOADS, NAMESPACES, UPLOAD_EVENTS. */
interface HostEnv {
  /** Signs the session cookie (`wrangler secret put SESSION_SECRET`). */
  SESSION_SECRET: string;
  /** Signs the blob links (`wrangler secret put UPLOAD_SECRET`); the edge mints them with it too. */
  UPLOAD_SECRET: string;
  /** Finished uploads by `<namespace>/<upload id>`, written by the queue consumer. */
  UPLOADS_SEEN: KVNamespace;
}

const SESSION_COOKIE = "session";
const USER_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * The mounted upload app types `c.env` as the edge's view of the bindings; at run time it is this
 * Worker's env, the same object every route gets.
 */
function hostEnv(env: unknown): HostEnv {
  return env as HostEnv;
}

/** The signed-in user's namespace (`users/<name>`), or null: no session, or a forged cookie. */
async function sessionNamespace(c: Context): Promise<string | null> {
  const name = await getSignedCookie(c, hostEnv(c.env).SESSION_SECRET, SESSION_COOKIE);
  return typeof name === "string" && USER_NAME.test(name) ? `users/${name}` : null;
}

// At the top level: the upload's Durable Object reads the app's options in its own isolate.
const uploads = createUploadApp({ authorize: (c) => sessionNamespace(c) });

const app = new Hono();
app.route("/uploads", uploads);

app.post("/api/session", async (c) => {
  // Demo sign-in: anyone may be anyone. Put your real authentication here.
  const { name } = await c.req.json<{ name?: unknown }>();
  if (typeof name !== "string" || name.length > 32 || !USER_NAME.test(name)) return c.json({ error: "name: lowercase letters, digits and dashes" }, 400);
  await setSignedCookie(c, SESSION_COOKIE, name, hostEnv(c.env).SESSION_SECRET, {
    path: "/",
    httpOnly: true,
    sameSite: "Strict",
    secure: new URL(c.req.url).protocol === "https:",
    maxAge: 24 * 3600,
  });
  return c.body(null, 204);
});

app.get("/api/uploads", async (c) => {
  const namespace = await sessionNamespace(c);
  if (!namespace) return c.json({ error: "sign in first" }, 401);
  const env = hostEnv(c.env);
  const { keys } = await env.UPLOADS_SEEN.list({ prefix: `${namespace}/` });
  const baseUrl = new URL("/uploads", c.req.url).href;
  const uploads = await Promise.all(
    keys.map(async ({ name }) => {
      const event = await env.UPLOADS_SEEN.get<UploadCompletedEvent>(name, "json");
      if (!event) return undefined;
      // A link of its own for each listing: the element's link expires (1 h by default).
      const link = await signBlobUrl(env.UPLOAD_SECRET, { baseUrl, namespace, digest: event.digest });
      return { ...event, link };
    }),
  );
  return c.json(uploads.filter((u) => u !== undefined));
});

/**
 * Each finished upload, from the UPLOAD_EVENTS queue, at least once: the KV key is the upload,
 * so a second delivery writes the same record again. A throw here retries that message.
 */
const recordUpload: UploadCompleteHandler = async (event, env) => {
  await hostEnv(env).UPLOADS_SEEN.put(`${event.namespace}/${event.id}`, JSON.stringify(event));
};

export default {
  fetch: app.fetch,
  queue: createUploadEventConsumer(recordUpload),
} satisfies ExportedHandler<HostEnv>;
