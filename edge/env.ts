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
}
