/**
 * Digests as they travel: Docker distribution's `sha256:<hex>` and RFC 9530's
 * `Repr-Digest: sha-256=:<base64>:`, plus the tus checksum extension's `<algo> <base64>`.
 * Parsing is strict: anything malformed returns undefined so callers answer 400, never guess.
 */

/** A SHA-256 digest, canonical form `sha256:<64 lowercase hex>`. */
export type Sha256Digest = `sha256:${string}`;

const HEX64 = /^[0-9a-f]{64}$/;

export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError("invalid hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Strict base64 (padded, standard alphabet); undefined when malformed. */
export function base64ToBytes(b64: string): Uint8Array | undefined {
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
  try {
    const bin = atob(b64);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** `sha256:<hex>` from 32 raw bytes. */
export function formatDigest(bytes: Uint8Array): Sha256Digest {
  if (bytes.length !== 32) throw new TypeError(`SHA-256 digest must be 32 bytes, got ${bytes.length}`);
  return `sha256:${bytesToHex(bytes)}`;
}

/** Parses `sha256:<64 hex>` (lowercase only, as distribution requires); undefined otherwise. */
export function parseDigest(value: string): Sha256Digest | undefined {
  if (!value.startsWith("sha256:")) return undefined;
  return HEX64.test(value.slice(7)) ? (value as Sha256Digest) : undefined;
}

export function digestHex(digest: Sha256Digest): string {
  return digest.slice(7);
}

/** RFC 9530 `Repr-Digest` value for a SHA-256 digest: `sha-256=:<base64>:`. */
export function formatReprDigest(digest: Sha256Digest): string {
  return `sha-256=:${bytesToBase64(hexToBytes(digestHex(digest)))}:`;
}

/**
 * Parses an RFC 9530 `Repr-Digest` header and returns its sha-256 member. Other algorithms
 * are ignored (RFC 9530 lets a sender list several); undefined when there is no valid sha-256.
 * Throws nothing: a malformed sha-256 member gives `null` so callers can tell "absent" from "bad".
 */
export function parseReprDigest(header: string): Sha256Digest | undefined | null {
  for (const member of header.split(",")) {
    const eq = member.indexOf("=");
    if (eq < 0) return null;
    const key = member.slice(0, eq).trim().toLowerCase();
    if (key !== "sha-256") continue;
    const m = /^:([A-Za-z0-9+/=]*):$/.exec(member.slice(eq + 1).trim());
    const bytes = m?.[1] !== undefined ? base64ToBytes(m[1]) : undefined;
    return bytes && bytes.length === 32 ? formatDigest(bytes) : null;
  }
  return undefined;
}
