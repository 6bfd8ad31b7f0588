/**
 * A file's identity across reloads without reading all of it: name, size, lastModified, type
 * and the SHA-256 of its first and last MiB (read through Blob.slice, hashed by crypto.subtle,
 * which runs off the main thread in browsers). tus-js-client's default fingerprint is metadata
 * only, so two different files with one name and size could continue each other's upload; the
 * content sample makes that practically impossible while costing at most 2 MiB of reading.
 */
import { bytesToHex } from "../shared/digest.ts";

const SAMPLE = 1024 * 1024;
const FINGERPRINT_VERSION = "fp1";

export interface FileIdentity {
  name: string;
  size: number;
  type: string;
  lastModified: number;
}

/** The upload key of a file: 32 hex characters, stable across reloads and processes. */
export async function fingerprint(file: Blob & FileIdentity): Promise<string> {
  const head = file.slice(0, Math.min(SAMPLE, file.size));
  const tail = file.slice(Math.max(SAMPLE, file.size - SAMPLE), file.size);
  const sample = new Uint8Array(await new Blob([head, tail]).arrayBuffer());
  const sampleHash = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", sample)));
  const identity = JSON.stringify([FINGERPRINT_VERSION, file.name, file.size, file.lastModified, file.type, sampleHash]);
  const key = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(identity));
  return bytesToHex(new Uint8Array(key)).slice(0, 32);
}
