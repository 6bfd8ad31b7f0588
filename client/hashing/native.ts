/**
 * Node's default hasher: node:crypto's SHA-256 (OpenSSL, with the CPU's SHA extensions where it
 * has them), over the file read in 1 MiB pieces (client/disk-file.ts).
 *
 * Why not hash-wasm with checkpoints, as in browsers: OpenSSL is ~5x faster here (1 GiB in
 * ~1.5-2 s with the reading, against ~5-6 s), and on a 2-core machine those seconds are taken
 * from the upload itself (bench item 3). Its state cannot be saved, so a run stopped mid-hash
 * starts again from byte 0 next time. That still costs less than hash-wasm would spend on the
 * rest of the file unless it stopped past ~80%, and never more than hashing the file twice at
 * OpenSSL's speed, under half of hashing it once with hash-wasm. A finished digest is
 * kept in the upload's record (client/upload.ts), so a crash during the transfer re-hashes
 * nothing. `createNodeUploader({ hashing: "resumable" })` selects the checkpointed hash-wasm
 * hasher instead (hasher.ts).
 */
import { createHash } from "node:crypto";
import { formatDigest } from "../../shared/digest.ts";
import { readRange } from "../disk-file.ts";
import { delayForRate } from "../progress.ts";
import type { HashJobResult } from "./job.ts";
import type { Hasher, HashInput } from "./hasher.ts";

const MiB = 1024 * 1024;

export function createNativeHasher(): Hasher {
  return {
    start(input) {
      const controller = new AbortController();
      return { result: hashFile(input, controller.signal), pause: () => controller.abort() };
    },
    // Nothing is kept between runs (see above): an interrupted row shows hashing at 0.
    peek: async () => undefined,
    forget: async () => undefined,
  };
}

async function hashFile(input: HashInput, signal: AbortSignal): Promise<HashJobResult> {
  const size = input.file.size;
  input.onStart?.(undefined);
  const hash = createHash("sha256");
  const stream = await readRange(input.file, 0, size);
  const started = Date.now();
  let offset = 0;
  let reported = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      if (signal.aborted) return { kind: "paused", offset, resumedAt: undefined, bytesRead: offset };
      offset += chunk.length;
      if (offset > size) throw new Error(`file is longer than its size ${size}`);
      hash.update(chunk);
      // Report about every MiB, not every chunk.
      if (offset - reported >= MiB) {
        reported = offset;
        input.onProgress?.(offset, offset);
      }
      if (input.rate) await delayForRate(started, offset, input.rate);
    }
  } finally {
    stream.destroy(); // leaving early closes the file
  }
  if (offset !== size) throw new Error(`short read at ${offset} of ${size} bytes`);
  input.onProgress?.(offset, offset);
  return { kind: "done", digest: formatDigest(new Uint8Array(hash.digest())), resumedAt: undefined, bytesRead: offset };
}
