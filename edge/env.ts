/** The worker's bindings and vars, as declared in wrangler.jsonc. */
export interface Env {
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
  /** "r2" (default: the BUCKET binding) or "s3"; the S3_* vars below are read for "s3" (edge/storage/s3-config.ts). */
  STORAGE?: string;
  S3_ENDPOINT?: string;
  S3_REGION?: string;
  S3_BUCKET?: string;
  /** Secrets: `wrangler secret put S3_ACCESS_KEY_ID` / `S3_SECRET_ACCESS_KEY`. */
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  S3_SESSION_TOKEN?: string;
  S3_FORCE_PATH_STYLE?: string;
}
