/**
 * Scheduled purge of expired uploads, like distribution's upload purging: find every upload
 * directory in the bucket and ask its Durable Object to purge it if it expired. Going through the
 * object keeps the purge in the upload's queue, so it can never race a PATCH, and the object
 * decides expiry from its own record (last write + UPLOAD_TTL_SECONDS).
 */
import type { Env } from "./env.ts";
import { listUploads } from "./registry/blobs.ts";
import { driverFor } from "./storage/from-env.ts";
import type { UploadObject } from "./upload-object.ts";

/** What one purge run did, for logs and tests. */
export interface PurgeReport {
  scanned: number;
  purged: string[];
  failed: string[];
}

/** Purges every upload that expired at `nowMs` (the cron's scheduledTime; tests pass their own). */
export async function purgeExpiredUploads(env: Env, nowMs: number): Promise<PurgeReport> {
  const report: PurgeReport = { scanned: 0, purged: [], failed: [] };
  for await (const upload of listUploads(driverFor(env))) {
    report.scanned++;
    let id: DurableObjectId;
    try {
      id = env.UPLOADS.idFromString(upload.id);
    } catch {
      // Not an id this edge minted: not ours to judge (the writer only creates 64-hex ids).
      continue;
    }
    const stub = env.UPLOADS.get(id) as DurableObjectStub<UploadObject>;
    try {
      if (await stub.purge(nowMs, upload)) report.purged.push(upload.id);
    } catch (err) {
      console.error(`purge of upload ${upload.id} failed`, err);
      report.failed.push(upload.id);
    }
  }
  return report;
}
