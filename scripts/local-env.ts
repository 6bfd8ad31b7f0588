/**
 * The worker vars `npm start` passes from its environment to the local worker.
 * Local defaults favour trying the product at once: anonymous uploads when no secret is set,
 * any origin allowed. A deployed worker takes its vars from wrangler.jsonc and secrets instead.
 */
export function localWorkerVars(env: Record<string, string | undefined>): Record<string, string> {
  const vars: Record<string, string> = {
    ALLOW_ANONYMOUS: env.ALLOW_ANONYMOUS ?? (env.UPLOAD_SECRET ? "false" : "true"),
    CORS_ORIGINS: env.CORS_ORIGINS ?? "*",
  };
  if (env.UPLOAD_SECRET) vars.UPLOAD_SECRET = env.UPLOAD_SECRET;
  // Completion events to a local receiver (docs/http-api.md, "Completion events"); a URL without
  // a secret makes the worker answer 500 CONFIG_INVALID, as deployed.
  for (const key of ["WEBHOOK_URL", "WEBHOOK_SECRET"]) {
    const value = env[key];
    if (value) vars[key] = value;
  }
  // STORAGE and S3_*: `npm start` against an S3-compatible store (docs/s3.md).
  const storage = ["STORAGE", "S3_ENDPOINT", "S3_REGION", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_SESSION_TOKEN", "S3_FORCE_PATH_STYLE"];
  for (const key of ["TUS_MAX_SIZE", "PART_SIZE", "MAX_PATCH_SIZE", "UPLOAD_TTL_SECONDS", "BODY_IDLE_TIMEOUT_SECONDS", "BLOB_URL_TTL_SECONDS", ...storage]) {
    const value = env[key];
    if (value !== undefined) vars[key] = value;
  }
  return vars;
}
