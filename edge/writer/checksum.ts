/**
 * Digests of one request body for the tus checksum extension (Upload-Checksum), injectable like
 * the SHA-256 of ./hashers.ts.
 */

/** An incremental digest of one request body. */
export interface ChecksumHasher {
  update(bytes: Uint8Array): void | Promise<void>;
  digest(): Promise<Uint8Array>;
}

export type ChecksumFactory = (algorithm: "sha1" | "sha256") => Promise<ChecksumHasher>;

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
