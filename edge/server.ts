/**
 * `edge-upload/server`: what the host app's backend needs, in Node (>= 22) or in a Worker: mint
 * the bearer tokens the edge accepts, mint signed blob links, and verify completion webhooks.
 * Web Standards only (Web Crypto, URL), and built on the very modules the edge verifies with
 * (edge/http/auth.ts, edge/blob-url.ts, edge/events.ts), so the formats cannot drift.
 */
import { signToken as signTokenPayload } from "./http/auth.ts";
import { DEFAULT_BLOB_URL_TTL_SECONDS, blobUrlQuery } from "./blob-url.ts";
import { verifyWebhookDelivery, type HeaderSource, type UploadCompletedEvent } from "./events.ts";

export { WebhookVerificationError, eventKey, type HeaderSource, type UploadCompletedEvent } from "./events.ts";

/** Default lifetime of a token minted by `signToken`. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;

const NAMESPACE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

function checkNamespace(namespace: string): void {
  // The edge refuses a token for a namespace outside this grammar (Docker repository names) with
  // 401; refusing to mint it says why, where the mistake is.
  if (namespace.length > 255 || !NAMESPACE.test(namespace)) throw new RangeError(`namespace ${JSON.stringify(namespace)} is not a Docker repository name`);
}

function expiry(ttl: number | undefined, fallback: number, now: number): number {
  const seconds = ttl ?? fallback;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new RangeError(`ttl must be a positive whole number of seconds, got ${ttl}`);
  return Math.floor(now / 1000) + seconds;
}

/**
 * A bearer token for `namespace`, valid for `ttl` seconds (default 1 h), signed with the edge's
 * UPLOAD_SECRET: send it as `Authorization: Bearer <token>` (the client's `token` option).
 */
export async function signToken(secret: string, opts: { namespace: string; ttl?: number; now?: number }): Promise<string> {
  checkNamespace(opts.namespace);
  return signTokenPayload(secret, { ns: opts.namespace, exp: expiry(opts.ttl, DEFAULT_TOKEN_TTL_SECONDS, opts.now ?? Date.now()) });
}

/**
 * A signed, read-only link to blob `digest` in `namespace`, valid for `ttl` seconds (default 1 h):
 * `<baseUrl>/blobs/<digest>?ns=...&exp=...&sig=...`. `baseUrl` is where the upload app is mounted
 * (`https://api.example.com/uploads`). GET and HEAD on it need no Authorization; the edge answers
 * 403 once it has expired or if any part of it was changed.
 */
export async function signBlobUrl(secret: string, opts: { baseUrl: string; namespace: string; digest: string; ttl?: number; now?: number }): Promise<string> {
  checkNamespace(opts.namespace);
  if (!/^sha256:[0-9a-f]{64}$/.test(opts.digest)) throw new RangeError(`digest must be sha256:<64 lowercase hex>, got ${JSON.stringify(opts.digest)}`);
  const exp = expiry(opts.ttl, DEFAULT_BLOB_URL_TTL_SECONDS, opts.now ?? Date.now());
  const base = new URL(opts.baseUrl).toString().replace(/\/+$/, "");
  return `${base}/blobs/${opts.digest}?${await blobUrlQuery(secret, opts.namespace, opts.digest, exp)}`;
}

/**
 * Verifies a completion webhook (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) with the edge's WEBHOOK_SECRET and returns its event; throws
 * WebhookVerificationError for a bad signature, a timestamp more than 5 minutes off, or a body
 * that is not an `upload.completed` event. Pass the raw body text, before any JSON parsing. The
 * same upload may be delivered more than once: `eventKey(event)` (= `webhook-id`) is the
 * idempotency key.
 */
export function verifyWebhook(
  secret: string,
  headers: HeaderSource,
  body: string,
  opts: { nowSeconds?: number; toleranceSeconds?: number } = {},
): Promise<UploadCompletedEvent> {
  return verifyWebhookDelivery(secret, headers, body, opts);
}
