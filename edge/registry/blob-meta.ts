/**
 * What an uploader said about a blob (Upload-Metadata `filename` and `filetype`), kept per
 * namespace beside the blob's link (./paths.ts layerMetaPath), so GET /blobs can answer
 * `Content-Disposition: attachment; filename=...`. It is not in the link itself: the link must stay
 * exactly "sha256:<hex>" for Docker distribution. It is a hint, never a requirement: a blob without
 * it (linked before it existed, or by a registry) is served as a plain attachment, and a meta that
 * cannot be read or parsed is ignored rather than failing the blob.
 */
import type { Sha256Digest } from "../../shared/digest.ts";
import { parseUploadMetadata } from "../../shared/protocol.ts";
import { layerMetaPath } from "./paths.ts";
import { readAll } from "../storage/body.ts";
import type { StorageDriver } from "../storage/driver.ts";

export interface BlobMeta {
  /** The uploader's file name, sanitised (no path, no control characters, at most 255 characters). */
  filename?: string;
  /** The uploader's media type (stored for clients; blobs are still served as octet-stream). */
  type?: string;
}

/** A file name longer than this is cut: no file system takes more, and it travels in a header. */
const MAX_FILENAME = 255;
const MAX_TYPE = 255;

/**
 * A file name safe to hand to a browser: the last path segment only (a name like `../../x` or
 * `C:\x` must not suggest a directory), no control or bidi-override characters (which can disguise
 * an extension), trimmed and cut to 255 characters. Undefined when nothing is left.
 */
export function sanitizeFilename(raw: string): string | undefined {
  const base = raw.split(/[/\\]/).pop() ?? "";
  const clean = base.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "").trim();
  const cut = Array.from(clean).slice(0, MAX_FILENAME).join("");
  return cut === "" || cut === "." || cut === ".." ? undefined : cut;
}

function sanitizeType(raw: string): string | undefined {
  const type = raw.trim().toLowerCase();
  return type.length <= MAX_TYPE && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : undefined;
}

function clean(meta: BlobMeta): BlobMeta {
  const filename = meta.filename === undefined ? undefined : sanitizeFilename(meta.filename);
  const type = meta.type === undefined ? undefined : sanitizeType(meta.type);
  return { ...(filename ? { filename } : {}), ...(type ? { type } : {}) };
}

/** The BlobMeta of a raw tus Upload-Metadata header (`filename`, `filetype`); {} when it says nothing usable. */
export function blobMetaFromUploadMetadata(rawMetadata: string | undefined): BlobMeta {
  const parsed = parseUploadMetadata(rawMetadata ?? "");
  if (!parsed) return {};
  return clean({
    ...(parsed.filename !== undefined ? { filename: parsed.filename } : {}),
    ...(parsed.filetype !== undefined ? { type: parsed.filetype } : {}),
  });
}

/**
 * Stores the uploader's filename and type beside `namespace`'s link to `digest`; call it where the
 * link is written. Writes nothing when there is nothing to say, so a blob without metadata leaves
 * only distribution's keys. Safe to repeat; the latest upload that linked the blob wins.
 */
export async function writeBlobMeta(driver: StorageDriver, namespace: string, digest: Sha256Digest, meta: BlobMeta): Promise<void> {
  const value = clean(meta);
  if (value.filename === undefined && value.type === undefined) return;
  await driver.put(layerMetaPath(namespace, digest), JSON.stringify(value));
}

/** The stored meta, or {} when there is none or it cannot be read (a hint must never fail a blob). */
export async function readBlobMeta(driver: StorageDriver, namespace: string, digest: Sha256Digest): Promise<BlobMeta> {
  try {
    const got = await driver.get(layerMetaPath(namespace, digest));
    const parsed: unknown = JSON.parse(new TextDecoder().decode(await readAll(got.body)));
    if (typeof parsed !== "object" || parsed === null) return {};
    const record = parsed as Record<string, unknown>;
    return clean({
      ...(typeof record.filename === "string" ? { filename: record.filename } : {}),
      ...(typeof record.type === "string" ? { type: record.type } : {}),
    });
  } catch {
    return {};
  }
}

/** RFC 5987 attr-char: what may stay unescaped in `filename*`. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

function encodeExtValue(value: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(value)) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * `Content-Disposition: attachment`, with the file name when known as RFC 6266 recommends: an
 * ASCII `filename="..."` fallback (non-ASCII, quotes, backslashes and `%` replaced by `_`, since
 * some browsers percent-decode it) and the exact name in `filename*=UTF-8''...`.
 */
export function contentDisposition(filename: string | undefined): string {
  const name = filename === undefined ? undefined : sanitizeFilename(filename);
  if (!name) return "attachment";
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeExtValue(name)}`;
}
