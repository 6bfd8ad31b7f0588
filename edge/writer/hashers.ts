/**
 * The writer's SHA-256, injectable so the same writer runs in workerd (hash-wasm's binary as a
 * static module, ./sha256.ts) and in Node unit tests (hash-wasm as shipped).
 */
import { createResumableSha256, sha256StateOffset, type ResumableSha256 } from "../../shared/sha256.ts";
import { uploadHashStatePath } from "../registry/paths.ts";
import { PathNotFoundError } from "../storage/driver.ts";
import type { CommittedRead, UploadInfo } from "./record.ts";

/** Makes a resumable SHA-256, continuing from a saved state when given one. */
export type HasherFactory = (state?: Uint8Array) => Promise<ResumableSha256>;

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

/**
 * The hasher at the committed offset, from its saved state; undefined when the state is missing
 * or unusable (another hash-wasm build): finish then re-reads the data, as distribution does.
 */
export async function loadHasher(read: CommittedRead, info: UploadInfo, createHasher: HasherFactory): Promise<ResumableSha256 | undefined> {
  if (info.offset === 0) return createHasher();
  try {
    const { bytes: state } = await read(uploadHashStatePath(info.namespace, info.id, info.offset));
    // A state that decodes but stands for another offset would verify the wrong bytes.
    if (sha256StateOffset(state) !== info.offset) return undefined;
    return await createHasher(state);
  } catch (err) {
    if (err instanceof PathNotFoundError || (err instanceof Error && err.name === "HashStateError")) return undefined;
    throw err;
  }
}
