/** Helpers for the writer tests inside workerd: a fresh R2 driver, seeded data, body shapes, digests. */
import { env } from "cloudflare:test";
import { formatDigest, type Sha256Digest } from "../../shared/digest.ts";
import { createR2Driver } from "../../edge/storage/r2.ts";
import type { StorageDriver } from "../../edge/storage/driver.ts";
import { ROOT } from "../../edge/registry/paths.ts";
import type { WriterOptions } from "../../edge/writer/index.ts";

export { chunked, sameBytes, seeded } from "../../edge/storage/conformance.ts";

declare module "cloudflare:test" {
  interface ProvidedEnv {
    BUCKET: R2Bucket;
  }
}

export const MiB = 1024 * 1024;
/** R2's minimum part size keeps the tests fast while exercising every multipart rule. */
export const PART = 5 * MiB;
/** No real waiting in tests; the delays asked for are recorded instead. */
export function testOptions(extra: WriterOptions = {}): WriterOptions & { delays: number[] } {
  const delays: number[] = [];
  return { partSize: PART, retryDelayMs: 10, sleep: async (ms) => void delays.push(ms), delays, ...extra };
}

export function r2(): StorageDriver {
  return createR2Driver(env.BUCKET);
}

let ids = 0;
/** A fresh 64-hex upload id (the HTTP layer uses Durable Object ids of that shape). */
export function newId(): string {
  const n = (++ids).toString(16).padStart(8, "0");
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(28)), (b) => b.toString(16).padStart(2, "0")).join("");
  return (n + rand).slice(0, 64);
}

/** A fresh namespace per test: the bucket is shared by the tests of a file. */
export function newNamespace(label: string): string {
  return `tests/${label}-${(++ids).toString(36)}`;
}

export async function sha256Of(bytes: Uint8Array): Promise<Sha256Digest> {
  return formatDigest(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** Every key in the bucket under `prefix` (relative to the layout root when `relative`). */
export async function keysUnder(driver: StorageDriver, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await driver.list(prefix, cursor === undefined ? {} : { cursor });
    out.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

/** Keys relative to docker/registry/v2/, for readable assertions. */
export function relative(keys: string[]): string[] {
  return keys.map((k) => (k.startsWith(`${ROOT}/`) ? k.slice(ROOT.length + 1) : k));
}

/** Splits `total` bytes into the irregular write sizes, cycling, the last write taking the rest. */
export function irregularSizes(total: number): number[] {
  const pattern = [1, 3 * MiB, 5 * MiB + 1, 17 * MiB, 2 * MiB - 1, 7];
  const sizes: number[] = [];
  let left = total;
  for (let i = 0; left > 0; i++) {
    const n = Math.min(pattern[i % pattern.length] as number, left);
    sizes.push(n);
    left -= n;
  }
  return sizes;
}
