/**
 * Signed blob links: `/blobs/sha256:<hex>?ns=<namespace>&exp=<unix seconds>&sig=<base64url HMAC>`,
 * a read-only, expiring URL for one blob in one namespace. A link cannot carry an Authorization
 * header (an `<a href>`, a fresh browser, a mail), so the grant travels in the URL instead: the
 * HMAC-SHA256 with UPLOAD_SECRET of `blob:<namespace>:<digest>:<exp>`. The `blob:` prefix and the
 * colons keep it apart from bearer tokens, which sign base64url text (no colon): neither MAC can
 * stand in for the other. Web Standards only: the edge and edge/server.ts `signBlobUrl` share it.
 */

import { fromBase64url, toBase64url } from "../shared/base64url.ts";

const encoder = new TextEncoder();

/** Default lifetime of a minted link (BLOB_URL_TTL_SECONDS overrides it on the edge). */
export const DEFAULT_BLOB_URL_TTL_SECONDS = 3600;

function key(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function signedText(namespace: string, digest: string, exp: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(encoder.encode(`blob:${namespace}:${digest}:${exp}`));
}

/** The query string (`ns=...&exp=...&sig=...`) granting a read of `digest` in `namespace` until `exp`. */
export async function blobUrlQuery(secret: string, namespace: string, digest: string, exp: number): Promise<string> {
  const sig = toBase64url(new Uint8Array(await crypto.subtle.sign("HMAC", await key(secret), signedText(namespace, digest, exp))));
  return new URLSearchParams({ ns: namespace, exp: String(exp), sig }).toString();
}

/** Why a signed link was refused; the edge answers 403 for all alike and logs nothing of the secret. */
export type BlobUrlProblem = "malformed" | "bad-signature" | "expired";

/**
 * Checks a link's `ns`, `exp`, `sig` for `digest`: signature first (crypto.subtle.verify is
 * constant time), then expiry against `nowSeconds`. Returns the namespace it grants.
 */
export async function verifyBlobUrl(
  secret: string,
  digest: string,
  params: { ns: string | undefined; exp: string | undefined; sig: string | undefined },
  nowSeconds: number,
): Promise<{ ok: true; namespace: string } | { ok: false; problem: BlobUrlProblem }> {
  const { ns, exp, sig } = params;
  if (!ns || !exp || !sig || !/^\d{1,12}$/.test(exp)) return { ok: false, problem: "malformed" };
  const mac = sig.length === 43 ? fromBase64url(sig) : undefined; // 32 bytes, unpadded
  if (!mac) return { ok: false, problem: "malformed" };
  const valid = await crypto.subtle.verify("HMAC", await key(secret), mac, signedText(ns, digest, Number(exp)));
  if (!valid) return { ok: false, problem: "bad-signature" };
  if (Number(exp) <= nowSeconds) return { ok: false, problem: "expired" };
  return { ok: true, namespace: ns };
}
