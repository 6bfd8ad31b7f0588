import type { StorageVars } from "./storage/s3-config.ts";

/**
 * The worker's bindings and vars, as declared in wrangler.jsonc. The storage choice
 * (STORAGE=r2|s3 and the S3_* vars, secrets via `wrangler secret put`) is declared once, in
 * StorageVars (edge/storage/s3-config.ts).
 */
export interface Env extends StorageVars {
  BUCKET: R2Bucket;
  UPLOADS: DurableObjectNamespace;
  ASSETS?: Fetcher;
  UPLOAD_SECRET?: string;
  ALLOW_ANONYMOUS?: string;
  CORS_ORIGINS?: string;
  TUS_MAX_SIZE?: string;
  PART_SIZE?: string;
  MAX_PATCH_SIZE?: string;
  UPLOAD_TTL_SECONDS?: string;
  /** A PATCH body that sends nothing for this long is cut off, keeping what arrived (default 30). */
  BODY_IDLE_TIMEOUT_SECONDS?: string;
}
