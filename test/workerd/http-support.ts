/**
 * Helpers for the HTTP tests in workerd: seeded bytes, tokens, and thin tus calls through SELF.
 */
import { SELF, env } from "cloudflare:test";
import { signToken } from "../../edge/http/auth.ts";
import type { Env as EdgeEnv } from "../../edge/env.ts";
import type { UploadObject } from "../../edge/upload-object.ts";
import { formatDigest, type Sha256Digest } from "../../shared/digest.ts";
import { formatUploadMetadata } from "../../shared/protocol.ts";

declare global {
  namespace Cloudflare {
    interface Env extends EdgeEnv {}
  }
}

export const BASE = "https://edge.test";
export const MiB = 1024 * 1024;
/** UPLOAD_SECRET in vitest.config.ts's workerd bindings. */
export const SECRET = "test-secret";

/** Deterministic bytes (xorshift32), so every run uploads the same data. */
export { seededBytes as seeded } from "../support/seeded.ts";

export async function sha256(bytes: Uint8Array): Promise<Sha256Digest> {
  return formatDigest(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export async function tokenFor(ns: string, ttlSeconds = 3600): Promise<string> {
  return signToken(SECRET, { ns, exp: Math.floor(Date.now() / 1000) + ttlSeconds });
}

export function auth(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export interface CreateOptions {
  length: number | string;
  token?: string;
  metadata?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

export async function create(opts: CreateOptions): Promise<{ res: Response; url: string; id: string }> {
  const headers: Record<string, string> = { "Tus-Resumable": "1.0.0", "Upload-Length": String(opts.length), ...auth(opts.token), ...opts.headers };
  if (opts.metadata) headers["Upload-Metadata"] = formatUploadMetadata(opts.metadata);
  if (opts.body) headers["Content-Type"] = "application/offset+octet-stream";
  const res = await SELF.fetch(`${BASE}/files`, { method: "POST", headers, ...(opts.body ? { body: opts.body } : {}) });
  const location = res.headers.get("location") ?? "";
  return { res, url: new URL(location, BASE).toString(), id: location.split("/").pop() ?? "" };
}

export function patch(
  url: string,
  offset: number,
  body: Uint8Array | ReadableStream<Uint8Array>,
  opts: { token?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  return SELF.fetch(url, {
    method: "PATCH",
    headers: {
      "Tus-Resumable": "1.0.0",
      "Content-Type": "application/offset+octet-stream",
      "Upload-Offset": String(offset),
      ...auth(opts.token),
      ...opts.headers,
    },
    body,
  });
}

export function head(url: string, token?: string): Promise<Response> {
  return SELF.fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", ...auth(token) } });
}

/** The committed offset HEAD reports (throws unless HEAD says 200). */
export async function offsetOf(url: string, token?: string): Promise<number> {
  const res = await head(url, token);
  if (res.status !== 200) throw new Error(`HEAD ${url}: ${res.status}`);
  return Number(res.headers.get("upload-offset"));
}

/** Sends `data` from `from` in chunks of `chunk` bytes; returns the last response. */
export async function upload(url: string, data: Uint8Array, chunk: number, token?: string, from = 0): Promise<Response> {
  let res: Response | undefined;
  for (let offset = from; offset < data.length; offset += chunk) {
    res = await patch(url, offset, data.subarray(offset, Math.min(offset + chunk, data.length)), { token });
    if (res.status !== 204) throw new Error(`PATCH at ${offset}: ${res.status} ${await res.text()}`);
  }
  if (!res) throw new Error("nothing to upload");
  return res;
}

export async function getBlob(location: string, token?: string, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(new URL(location, BASE), { headers: { ...auth(token), ...headers } });
}

/** Every key in the bucket under `prefix`. */
export async function bucketKeys(prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.BUCKET.list({ prefix, ...(cursor ? { cursor } : {}) });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys.sort();
}

export function stubOf(id: string): DurableObjectStub<UploadObject> {
  return env.UPLOADS.get(env.UPLOADS.idFromString(id)) as DurableObjectStub<UploadObject>;
}

export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { code: string };
  return body.code;
}
