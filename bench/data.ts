/**
 * Seeded random test files in a temp directory (never committed). AES-128-CTR over zeros with a
 * key derived from the seed: incompressible, the same bytes for the same seed on every run, and
 * ~1 GB/s, so a 2 GiB file costs seconds, not minutes. Each scenario uses its own seed, so no
 * upload is deduplicated against a blob an earlier scenario already linked.
 */
import { createCipheriv, createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";

const BLOCK = 4 * 1024 * 1024;

export interface TestFile {
  path: string;
  size: number;
  /** `sha256:<hex>` */
  digest: string;
}

export async function seededFile(dir: string, name: string, size: number, seed: number): Promise<TestFile> {
  const path = join(dir, name);
  const key = createHash("sha256").update(`edge-upload-bench:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  const zeros = Buffer.alloc(BLOCK);
  for (let done = 0; done < size; done += BLOCK) {
    const n = Math.min(BLOCK, size - done);
    const chunk = cipher.update(n === BLOCK ? zeros : zeros.subarray(0, n));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  if ((await stat(path)).size !== size) throw new Error(`short write: ${path}`);
  return { path, size, digest: `sha256:${hash.digest("hex")}` };
}
