/**
 * Blob and link helpers over the distribution layout (distribution's linkedBlobStore, reduced):
 * is a blob present, is it linked into a namespace, link it, stream it, and the upload
 * directories the purge walks. Keys come from ./paths.ts only.
 */
import { parseDigest, type Sha256Digest } from "../../shared/digest.ts";
import { blobDataPath, layerLinkPath, parseUploadKey, repositoriesPrefix, uploadPrefix } from "./paths.ts";
import { PathNotFoundError, type ByteRange, type GetResult, type ObjectInfo, type StorageDriver } from "../storage/driver.ts";
import { readAll } from "../storage/body.ts";

/** The blob's object info, or undefined when no blob is stored for `digest`. */
export async function statBlob(driver: StorageDriver, digest: Sha256Digest): Promise<ObjectInfo | undefined> {
  return orUndefined(driver.stat(blobDataPath(digest)));
}

/** The digest a namespace's link for `digest` names, or undefined when there is no (valid) link. */
export async function readLink(driver: StorageDriver, namespace: string, digest: Sha256Digest): Promise<Sha256Digest | undefined> {
  const link = await orUndefined(driver.get(layerLinkPath(namespace, digest)));
  if (!link) return undefined;
  const text = new TextDecoder().decode(await readAll(link.body)).trim();
  return parseDigest(text);
}

/**
 * The blob's info when `digest` is linked in `namespace` and the blob is stored; undefined
 * otherwise (the HTTP layer answers 404 either way, so there is no existence oracle).
 */
export async function isLinked(driver: StorageDriver, namespace: string, digest: Sha256Digest): Promise<ObjectInfo | undefined> {
  if ((await readLink(driver, namespace, digest)) !== digest) return undefined;
  return statBlob(driver, digest);
}

/** Writes the namespace's link to a blob: `_layers/sha256/<hex>/link` containing the digest. */
export async function linkBlob(driver: StorageDriver, namespace: string, digest: Sha256Digest): Promise<void> {
  await driver.put(layerLinkPath(namespace, digest), digest);
}

/** Streams a stored blob (or a range of it); PathNotFoundError / InvalidRangeError as the driver throws them. */
export function openBlob(driver: StorageDriver, digest: Sha256Digest, range?: ByteRange): Promise<GetResult> {
  return driver.get(blobDataPath(digest), range ? { range } : {});
}

/** Every upload that has keys in storage, each once (what the purge walks). */
export async function* listUploads(driver: StorageDriver): AsyncGenerator<{ namespace: string; id: string }> {
  let cursor: string | undefined;
  let last = "";
  do {
    const page = await driver.list(repositoriesPrefix, cursor === undefined ? {} : { cursor });
    for (const key of page.keys) {
      const upload = parseUploadKey(key);
      if (!upload) continue;
      // Keys are listed in order, so one upload's keys are adjacent.
      const id = `${upload.namespace}\n${upload.id}`;
      if (id === last) continue;
      last = id;
      yield upload;
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** Every key under an upload's prefix. */
export function listUploadKeys(driver: StorageDriver, namespace: string, id: string): Promise<string[]> {
  return listKeys(driver, uploadPrefix(namespace, id));
}

/** Every key under `prefix`, through all the listing's pages. */
export async function listKeys(driver: StorageDriver, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await driver.list(prefix, cursor === undefined ? {} : { cursor });
    keys.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

/**
 * Deletes every key under an upload's prefix (distribution's removeResources). Does not abort a
 * multipart upload: use the writer's cancel() for that when the upload record still exists.
 */
export async function removeUploadKeys(driver: StorageDriver, namespace: string, id: string): Promise<void> {
  const keys = await listUploadKeys(driver, namespace, id);
  if (keys.length > 0) await driver.delete(...keys);
}

/**
 * Removes every key of an upload the writer cannot resume (no `info`: a creation that died
 * half-way), but only when its newest key is older than `cutoffMs` (Infinity: regardless), so a
 * creation in progress is never swept. Its multipart upload, if any, is left to R2's own
 * multipart expiry. Returns whether keys were removed.
 */
export async function removeStaleUploadKeys(driver: StorageDriver, upload: { namespace: string; id: string }, cutoffMs: number): Promise<boolean> {
  const keys = await listUploadKeys(driver, upload.namespace, upload.id);
  if (keys.length === 0) return false;
  if (Number.isFinite(cutoffMs)) {
    for (const key of keys) {
      const info = await driver.stat(key).catch(() => undefined);
      if (info && info.modified.getTime() >= cutoffMs) return false;
    }
  }
  await removeUploadKeys(driver, upload.namespace, upload.id);
  return true;
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof PathNotFoundError) return undefined;
    throw err;
  }
}
