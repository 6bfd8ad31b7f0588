/**
 * The Workers entry: HTTP through the Hono app, and a scheduled purge of expired uploads.
 */
import { Hono } from "hono";
import type { Env } from "./env.ts";

export { UploadObject } from "./upload-object.ts";

const app = new Hono<{ Bindings: Env }>();
app.get("/health", (c) => c.json({ ok: true }));

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
