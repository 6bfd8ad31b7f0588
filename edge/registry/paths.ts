/**
 * The only place that builds storage keys. The layout is Docker distribution's
 * (registry/storage/paths.go), under the same root, so a distribution registry pointed at the
 * same bucket serves every blob linked here:
 *
 *     docker/registry/v2/
 *       blobs/
 *         sha256/<hex[0:2]>/<hex>/data                         the blob, complete and verified
 *       repositories/
 *         <namespace>/                                         one or more path components
 *           _layers/sha256/<hex>/link                          "sha256:<hex>": blob linked here
 *           _layers/sha256/<hex>/meta                          ours: JSON {filename, type} of the upload
 *                                                              that linked it (distribution reads only link)
 *           _uploads/<id>/                                     one upload in progress
 *             startedat                                        RFC 3339 time (distribution's)
 *             hashstates/sha256/<offset>                       hasher state at <offset> (distribution's)
 *             data                                             the assembled data, when the
 *                                                              digest was not known at creation
 *             info                                             ours: upload record (JSON), the commit point
 *             tail/<offset>                                    ours: bytes after the last full part,
 *                                                              valid at committed <offset>
 *             parts/<group>                                    ours: JSON etags of parts
 *                                                              1000*group+1 .. 1000*group+1000
 *
 * Every component that comes from a request (namespace, upload id, digest) is validated here,
 * with a typed error, before it can become part of a key: no `..`, no `%2F`, no empty segments,
 * no upper case, nothing over-long.
 */
import { digestHex, parseDigest, type Sha256Digest } from "../../shared/digest.ts";

/** The root every key lives under (distribution's storagePathRoot + "v2"). */
export const ROOT = "docker/registry/v2";

/** Distribution's repository-name grammar (reference.NameRegexp, lower-case only). */
const NAMESPACE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
/** Distribution's NameTotalLengthMax. */
export const MAX_NAMESPACE_LENGTH = 255;
const UPLOAD_ID = /^[0-9a-f]{64}$/;

/** A namespace, upload id, digest or offset that may not become part of a key. */
export class InvalidPathComponentError extends Error {
  override readonly name = "InvalidPathComponentError";
  constructor(
    readonly component: "namespace" | "uploadId" | "digest" | "offset",
    readonly value: string,
    readonly reason: string,
  ) {
    super(`invalid ${component} ${JSON.stringify(value.length > 300 ? `${value.slice(0, 300)}...` : value)}: ${reason}`);
  }
}

/** Why `ns` is not a valid namespace, or undefined when it is. */
export function namespaceProblem(ns: string): string | undefined {
  if (ns === "") return "empty";
  if (ns.length > MAX_NAMESPACE_LENGTH) return `longer than ${MAX_NAMESPACE_LENGTH} characters`;
  if (!NAMESPACE.test(ns)) {
    return "must match [a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)* (lower case, no empty or relative segments, no escapes)";
  }
  return undefined;
}

export function isValidNamespace(ns: string): boolean {
  return namespaceProblem(ns) === undefined;
}

/** Returns `ns` when valid; throws InvalidPathComponentError otherwise. */
export function validateNamespace(ns: string): string {
  const problem = namespaceProblem(ns);
  if (problem) throw new InvalidPathComponentError("namespace", ns, problem);
  return ns;
}

/** Upload ids are exactly 64 lower-case hex characters (a Durable Object id). */
export function isValidUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

export function validateUploadId(id: string): string {
  if (!isValidUploadId(id)) throw new InvalidPathComponentError("uploadId", id, "must be 64 lower-case hex characters");
  return id;
}

function hexOf(digest: Sha256Digest): string {
  if (parseDigest(digest) === undefined) throw new InvalidPathComponentError("digest", digest, "must be sha256:<64 lower-case hex>");
  return digestHex(digest);
}

function offsetOf(offset: number): string {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidPathComponentError("offset", String(offset), "must be a non-negative integer");
  return String(offset);
}

/** `blobs/` prefix: every blob. */
export const blobsPrefix = `${ROOT}/blobs/`;

/** `repositories/` prefix: every namespace, link and upload (what the purge lists). */
export const repositoriesPrefix = `${ROOT}/repositories/`;

/** `blobs/sha256/<hex[0:2]>/<hex>/data` */
export function blobDataPath(digest: Sha256Digest): string {
  const hex = hexOf(digest);
  return `${ROOT}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}

/** `repositories/<ns>/_layers/sha256/<hex>/link`, whose content is the digest string. */
export function layerLinkPath(ns: string, digest: Sha256Digest): string {
  return `${ROOT}/repositories/${validateNamespace(ns)}/_layers/sha256/${hexOf(digest)}/link`;
}

/**
 * `repositories/<ns>/_layers/sha256/<hex>/meta`: what the uploader said about the blob (filename,
 * type), per namespace. Beside the link, not in it: distribution reads the link as the bare digest
 * and skips other files in the directory.
 */
export function layerMetaPath(ns: string, digest: Sha256Digest): string {
  return `${ROOT}/repositories/${validateNamespace(ns)}/_layers/sha256/${hexOf(digest)}/meta`;
}

/** `repositories/<ns>/_uploads/<id>/`: every key of one upload starts with this. */
export function uploadPrefix(ns: string, id: string): string {
  return `${ROOT}/repositories/${validateNamespace(ns)}/_uploads/${validateUploadId(id)}/`;
}

/** `_uploads/<id>/startedat` (distribution's), RFC 3339. */
export function uploadStartedAtPath(ns: string, id: string): string {
  return `${uploadPrefix(ns, id)}startedat`;
}

/** `_uploads/<id>/data`: the assembled upload when it is not written to its blob path directly. */
export function uploadDataPath(ns: string, id: string): string {
  return `${uploadPrefix(ns, id)}data`;
}

/** `_uploads/<id>/hashstates/sha256/`: prefix of the saved hasher states. */
export function uploadHashStatesPrefix(ns: string, id: string): string {
  return `${uploadPrefix(ns, id)}hashstates/sha256/`;
}

/** `_uploads/<id>/hashstates/sha256/<offset>` (distribution's): hasher state after <offset> bytes. */
export function uploadHashStatePath(ns: string, id: string, offset: number): string {
  return `${uploadHashStatesPrefix(ns, id)}${offsetOf(offset)}`;
}

/** `_uploads/<id>/info`: our upload record, written last in every commit. */
export function uploadInfoPath(ns: string, id: string): string {
  return `${uploadPrefix(ns, id)}info`;
}

/** `_uploads/<id>/tail/<offset>`: the bytes past the last full part, valid at committed <offset>. */
export function uploadTailPath(ns: string, id: string, offset: number): string {
  return `${uploadPrefix(ns, id)}tail/${offsetOf(offset)}`;
}

/** `_uploads/<id>/parts/<group>`: etags of parts 1000*group+1 .. 1000*group+1000. */
export function uploadPartsPath(ns: string, id: string, group: number): string {
  return `${uploadPrefix(ns, id)}parts/${offsetOf(group)}`;
}

/** What a key under `repositories/` says about its namespace and upload. */
export type RepositoryKey =
  | { kind: "upload"; namespace: string; id: string /** the rest after `_uploads/<id>/` */; rest: string }
  | { kind: "link"; namespace: string; digest: Sha256Digest };

/**
 * Parses a key under `repositories/` back into its namespace and upload id (or linked digest);
 * undefined for any key that is not one this layout builds (so the purge never acts on foreign
 * keys).
 */
export function parseRepositoryKey(key: string): RepositoryKey | undefined {
  if (!key.startsWith(repositoriesPrefix)) return undefined;
  const rest = key.slice(repositoriesPrefix.length);
  const upload = /^(.+?)\/_uploads\/([0-9a-f]{64})\/(.+)$/.exec(rest);
  if (upload?.[1] && upload[2] && upload[3]) {
    return isValidNamespace(upload[1]) ? { kind: "upload", namespace: upload[1], id: upload[2], rest: upload[3] } : undefined;
  }
  const link = /^(.+?)\/_layers\/sha256\/([0-9a-f]{64})\/link$/.exec(rest);
  if (link?.[1] && link[2]) {
    return isValidNamespace(link[1]) ? { kind: "link", namespace: link[1], digest: `sha256:${link[2]}` } : undefined;
  }
  return undefined;
}

/** Parses an upload key into `{ namespace, id }`; undefined for anything else. */
export function parseUploadKey(key: string): { namespace: string; id: string } | undefined {
  const parsed = parseRepositoryKey(key);
  return parsed?.kind === "upload" ? { namespace: parsed.namespace, id: parsed.id } : undefined;
}
