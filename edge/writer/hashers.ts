/**
 * The hashers the writer uses, injectable so the same writer runs in workerd (hash-wasm's binary
 * as a static module, edge/sha256.ts) and in Node unit tests (hash-wasm as shipped).
 */
import { createResumableSha256, type ResumableSha256 } from "../shared/sha256.ts";

/** Makes a resumable SHA-256, continuing from a saved state when given one. */
export type HasherFactory = (state?: Uint8Array) => Promise<ResumableSha256>;

/** An incremental digest of one request body for the tus checksum extension. */
export interface ChecksumHasher {
  update(bytes: Uint8Array): void | Promise<void>;
  digest(): Promise<Uint8Array>;
}

export type ChecksumFactory = (algorithm: "sha1" | "sha256") => Promise<ChecksumHasher>;

/** workerd identifies itself this way; there runtime Wasm compilation is disallowed. */
function inWorkerd(): boolean {
  return (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === "Cloudflare-Workers";
}

/**
 * SHA-256 chosen by runtime. The edge module is imported lazily: its static `.wasm` import only
 * resolves under workerd's bundler, and Node never reaches this branch.
 */
export const defaultHasherFactory: HasherFactory = async (state) => {
  if (inWorkerd()) {
    const { createEdgeSha256 } = await import("./sha256.ts");
    return createEdgeSha256(state);
  }
  return createResumableSha256(state ? { state } : {});
};

interface DigestStreamLike extends WritableStream<Uint8Array> {
  readonly digest: Promise<ArrayBuffer>;
}

/**
 * Body checksums: workerd's incremental `crypto.DigestStream` where it exists (Web Crypto's
 * `digest` is one-shot and would need the whole body in memory), hash-wasm elsewhere.
 */
export const defaultChecksumFactory: ChecksumFactory = async (algorithm) => {
  const DigestStream = (crypto as unknown as { DigestStream?: new (algorithm: string) => DigestStreamLike }).DigestStream;
  if (DigestStream) {
    const stream = new DigestStream(algorithm === "sha1" ? "SHA-1" : "SHA-256");
    const writer = stream.getWriter();
    return {
      update: (bytes) => writer.write(bytes),
      async digest() {
        await writer.close();
        return new Uint8Array(await stream.digest);
      },
    };
  }
  const hashWasm = await import("hash-wasm");
  const h = algorithm === "sha1" ? await hashWasm.createSHA1() : await hashWasm.createSHA256();
  return {
    update: (bytes) => void h.update(bytes),
    digest: async () => h.digest("binary"),
  };
};
