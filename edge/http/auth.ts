/**
 * Bearer tokens: `base64url(JSON {ns, exp}) + "." + base64url(HMAC-SHA256(UPLOAD_SECRET, first part))`.
 * Stateless on purpose: the edge needs no user store, a token is minted by whoever holds the secret
 * (`npm run token`, or the app's own backend) and says which namespace it may write and read until
 * when. Web Crypto only, so scripts/token.mjs signs with this very file under Node.
 */
import { fromBase64url, toBase64url } from "../../shared/base64url.ts";
import type { TokenPayload } from "../../shared/protocol.ts";

const encoder = new TextEncoder();

const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret, key);
  }
  return key;
}

/** Seconds since the epoch: the clock of tokens and signed blob links. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Signs a token for `payload` (exp in seconds since the epoch). */
export async function signToken(secret: string, payload: TokenPayload): Promise<string> {
  const body = toBase64url(encoder.encode(JSON.stringify({ ns: payload.ns, exp: payload.exp })));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(body)));
  return `${body}.${toBase64url(mac)}`;
}

/** Why a token was refused; the edge says it in the 401 body, never which namespace exists. */
export type TokenProblem = "malformed" | "bad-signature" | "expired";

/**
 * Verifies a token: signature first (crypto.subtle.verify compares in constant time), then
 * expiry against `nowSeconds`. Returns the payload or the problem.
 */
export async function verifyToken(
  secret: string,
  token: string,
  nowSeconds: number,
): Promise<{ ok: true; payload: TokenPayload } | { ok: false; problem: TokenProblem }> {
  const parts = token.split(".");
  if (parts.length !== 2) return { ok: false, problem: "malformed" };
  const [body = "", sig = ""] = parts;
  const mac = fromBase64url(sig);
  if (!mac || mac.length !== 32 || body === "") return { ok: false, problem: "malformed" };
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(secret), mac, encoder.encode(body));
  if (!valid) return { ok: false, problem: "bad-signature" };
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(fromBase64url(body)));
  } catch {
    return { ok: false, problem: "malformed" };
  }
  if (
    typeof payload !== "object" ||
    payload === null ||
    typeof (payload as TokenPayload).ns !== "string" ||
    typeof (payload as TokenPayload).exp !== "number" ||
    !Number.isFinite((payload as TokenPayload).exp)
  ) {
    return { ok: false, problem: "malformed" };
  }
  const { ns, exp } = payload as TokenPayload;
  if (exp <= nowSeconds) return { ok: false, problem: "expired" };
  return { ok: true, payload: { ns, exp } };
}
