/**
 * The Workers entry: HTTP through the upload app (edge/worker.ts, mounted at "/" exactly as a host
 * Worker mounts it under its own path), and the cron's purge of expired uploads. The purge takes
 * "now" from the controller's scheduledTime, so tests drive it with any clock.
 */
import { Hono } from "hono";
import type { Env } from "./env.ts";
import { createUploadApp, onUploadError, onUploadNotFound, purgeExpiredUploads, type AppEnv } from "./worker.ts";

export { NamespaceObject, UploadObject } from "./worker.ts";

const worker = new Hono<AppEnv>();
worker.route("/", createUploadApp());
// The root's own answers for paths no route takes (and errors outside the mounted routes).
worker.notFound(onUploadNotFound);
worker.onError(onUploadError);

export default {
  fetch: worker.fetch,
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(
      purgeExpiredUploads(env, controller.scheduledTime).then((report) => {
        console.log(`purge: scanned ${report.scanned}, purged ${report.purged.length}, failed ${report.failed.length}`);
      }),
    );
  },
} satisfies ExportedHandler<Env>;
