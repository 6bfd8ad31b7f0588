/**
 * The Workers entry: HTTP through the Hono app, and the cron's purge of expired uploads.
 * The purge takes "now" from the controller's scheduledTime, so tests drive it with any clock.
 */
import { app } from "./http/app.ts";
import type { Env } from "./env.ts";
import { purgeExpiredUploads } from "./purge.ts";

export { NamespaceObject } from "./namespace-limits.ts";
export { UploadObject } from "./upload-object.ts";

export default {
  fetch: app.fetch,
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(
      purgeExpiredUploads(env, controller.scheduledTime).then((report) => {
        console.log(`purge: scanned ${report.scanned}, purged ${report.purged.length}, failed ${report.failed.length}`);
      }),
    );
  },
} satisfies ExportedHandler<Env>;
