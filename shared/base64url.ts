/**
 * base64url without padding (RFC 4648 §5), the text form of bearer tokens and signed blob links.
 * Web Standards only (btoa/atob), so the edge, the browser and Node share it.
 */

/** Bytes as unpadded base64url. */
export function toBase64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The bytes of canonical unpadded base64url `text`, or undefined. Canonical matters for MACs: the
 * last character of a 32-byte value carries 2 spare bits, so without the check four different
 * strings would decode to the same signature and a "tampered" link would still be accepted.
 */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
  return toBase64url(bytes) === text ? bytes : undefined;
}
