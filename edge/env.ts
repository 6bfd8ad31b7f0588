import type { UploadCompletedEvent } from "./events.ts";
import type { StorageVars } from "./storage/s3-config.ts";

/**
 * The worker's bindings and vars, as declared in wrangler.jsonc. The storage choice
 * (STORAGE=r2|s3 and the S3_* vars, secrets via `wrangler secret put`) is declared once, in
 * StorageVars (edge/storage/s3-config.ts).
 */
export interface Env extends StorageVars {
  BUCKET: R2Bucket;
  UPLOADS: DurableObjectNamespace;
  /**
   * One NamespaceObject per namespace (edge/namespace-limits.ts) counting its open uploads and
   * bytes. Optional so a hand-written workerd config without it (bench/baseline.ts) still runs,
   * with no namespace limits; wrangler.jsonc always binds it.
   */
  NAMESPACES?: DurableObjectNamespace;
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
  /** Open (unfinished) uploads one namespace may have at once; POST /files over it is 429 (default 100). */
  MAX_OPEN_UPLOADS_PER_NAMESPACE?: string;
  /** Sum of Upload-Length over one namespace's open uploads; POST /files over it is 429 (default 1 TiB). */
  MAX_OPEN_BYTES_PER_NAMESPACE?: string;
  /** Queue producer: when bound, every finished upload's event is sent to it (at least once). */
  UPLOAD_EVENTS?: Queue<UploadCompletedEvent>;
  /** When set, every finished upload's event is POSTed here, signed per Standard Webhooks, until a 2xx. */
  WEBHOOK_URL?: string;
  /** The webhook's signing secret (`whsec_<base64>` or any string); required with WEBHOOK_URL. */
  WEBHOOK_SECRET?: string;
  /** Lifetime of the signed blob links the edge mints (default 3600). */
  BLOB_URL_TTL_SECONDS?: string;
}
