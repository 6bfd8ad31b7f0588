/**
 * Completion events: what a finished upload tells the host app's backend, and the Standard
 * Webhooks signature (https://www.standardwebhooks.com) its webhook POST carries. Web Standards
 * only (Web Crypto, TextEncoder), so the edge signs with this file and the host's backend
 * verifies with it too (edge/server.ts `verifyWebhook`), in Node >= 22 or in a Worker: the
 * format cannot drift between the two sides.
 */
import { parseUploadMetadata } from "../shared/protocol.ts";

/** The one event the edge emits, once per finished upload (delivered at least once). */
export interface UploadCompletedEvent {
  type: "upload.completed";
  /** The upload id (the path segment of its tus URL). */
  id: string;
  /** The namespace it was uploaded into (the token's `ns`, or what `authorize` returned). */
  namespace: string;
  /** `sha256:<64 hex>`; the blob is at `<mount>/blobs/<digest>`. */
  digest: string;
  /** Bytes. */
  size: number;
  /** The upload's tus Upload-Metadata, decoded (`filename`, `filetype`, `digest`, ...). */
  metadata: Record<string, string>;
  /** When the finish was recorded (ISO 8601, UTC); the same on every redelivery. */
  finishedAt: string;
}

/** What the session knows of a finished upload, enough to build its event. */
export interface FinishedUpload {
  id: string;
  namespace: string;
  length: number;
  metadata: string;
  finished?: { digest: string; at: number } | undefined;
}

/**
 * The idempotency key of an upload's completion: the same on every delivery of it (queue message,
 * webhook retry, hook call), and the Standard Webhooks `webhook-id`. A consumer that has seen a
 * key has handled that upload.
 */
export function eventKey(event: Pick<UploadCompletedEvent, "type" | "id">): string {
  return `${event.type}:${event.id}`;
}

/** The event of a finished upload; built from the record each time, so every delivery is identical. */
export function completionEvent(upload: FinishedUpload): UploadCompletedEvent {
  if (!upload.finished) throw new Error(`upload ${upload.id} is not finished`);
  return {
    type: "upload.completed",
    id: upload.id,
    namespace: upload.namespace,
    digest: upload.finished.digest,
    size: upload.length,
    metadata: parseUploadMetadata(upload.metadata) ?? {},
    finishedAt: new Date(upload.finished.at).toISOString(),
  };
}

const encoder = new TextEncoder();

/**
 * The HMAC key bytes of a webhook secret. Standard Webhooks secrets are `whsec_<base64>` and the
 * key is the decoded bytes; any other string is used as its UTF-8 bytes, so a plain
 * `wrangler secret put WEBHOOK_SECRET` value works too. Both sides go through this function.
 */
export function webhookKeyBytes(secret: string): Uint8Array<ArrayBuffer> {
  if (secret.startsWith("whsec_")) {
    const b64 = secret.slice("whsec_".length);
    try {
      return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    } catch {
      throw new Error("WEBHOOK_SECRET starts with whsec_ but the rest is not base64");
    }
  }
  if (secret === "") throw new Error("webhook secret is empty");
  return Uint8Array.from(encoder.encode(secret));
}

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function hmac(secret: string, content: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", webhookKeyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(content)));
}

/** The three Standard Webhooks headers for one delivery attempt of `body`. */
export async function webhookHeaders(secret: string, id: string, timestampSeconds: number, body: string): Promise<Record<string, string>> {
  const signature = base64(await hmac(secret, `${id}.${timestampSeconds}.${body}`));
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": `v1,${signature}`,
  };
}

/** Why a webhook was refused by `verifyWebhook`. */
export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

/** Default tolerance between `webhook-timestamp` and now, as the Standard Webhooks libraries use (replay window). */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

/** Headers as a Fetch `Headers`, or a plain object such as Node's `IncomingHttpHeaders`. */
export type HeaderSource = Headers | Record<string, string | readonly string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | readonly string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value.join(", ") : (value as string | undefined);
}

/** Constant-time comparison of two equal-length byte strings (a mismatch in length is not secret). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** Whether `value` has the shape of an UploadCompletedEvent (a queue message body, a parsed webhook body). */
export function isUploadCompletedEvent(value: unknown): value is UploadCompletedEvent {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    v.type === "upload.completed" &&
    typeof v.id === "string" &&
    typeof v.namespace === "string" &&
    typeof v.digest === "string" &&
    typeof v.size === "number" &&
    typeof v.finishedAt === "string" &&
    typeof v.metadata === "object" &&
    v.metadata !== null
  );
}

/**
 * Verifies a webhook delivery as Standard Webhooks does: the signature (any `v1,<base64>` of the
 * space-separated list, so a secret can be rotated), the timestamp within `toleranceSeconds` of
 * `nowSeconds` (replays of old deliveries fail), and the body as an UploadCompletedEvent whose
 * key is the `webhook-id`. Returns the event; throws WebhookVerificationError otherwise. `body`
 * must be the raw request body, byte for byte (parse it after, never before).
 */
export async function verifyWebhookDelivery(
  secret: string,
  headers: HeaderSource,
  body: string,
  opts: { nowSeconds?: number; toleranceSeconds?: number } = {},
): Promise<UploadCompletedEvent> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError("webhook-timestamp is not a Unix time");
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) throw new WebhookVerificationError("webhook-timestamp too far from now");
  const expected = await hmac(secret, `${id}.${timestamp}.${body}`);
  const matches = signatures.split(" ").some((entry) => {
    const [version, sig] = entry.split(",", 2);
    if (version !== "v1" || !sig) return false;
    let given: Uint8Array;
    try {
      given = Uint8Array.from(atob(sig), (c) => c.charCodeAt(0));
    } catch {
      return false;
    }
    return equalBytes(given, expected);
  });
  if (!matches) throw new WebhookVerificationError("no matching webhook-signature");
  let event: unknown;
  try {
    event = JSON.parse(body);
  } catch {
    throw new WebhookVerificationError("body is not JSON");
  }
  if (!isUploadCompletedEvent(event)) throw new WebhookVerificationError("body is not an upload.completed event");
  if (eventKey(event) !== id) throw new WebhookVerificationError("webhook-id does not match the event");
  return event;
}
