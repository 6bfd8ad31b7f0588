/**
 * The page's settings from its URL, so one static page serves any edge:
 *   ?endpoint=<url>     tus endpoint (default `/files` on this origin)
 *   ?token=<token>      bearer token (from `npm run token -- <namespace>`). It stays in the
 *                       address so a reload (or a restarted browser) can resume with it.
 *   ?chunk=<size>       transfer chunk size, e.g. `8MiB` (rounded by the library to the edge's part size)
 *   ?checkpoint=<size>  hasher checkpoint interval, e.g. `16MiB`
 *   ?concurrency=<n>    files uploading at once
 *   ?hashFirst=<b|size> hash before creating the upload: `true`, `false`, or up to a size (e.g. `64MiB`)
 *   ?hashRate=<size>    at most this many bytes per second hashed (e.g. `16MiB`; keeps a laptop cool)
 *   ?sendRate=<size>    at most this many bytes per second sent
 *   ?staging=false      keep no copy of the files in this browser (issue 18; default: kept)
 *   ?stageLimit=<size>  keep no copy of files larger than this (default 4 GiB)
 * Sizes take B, KiB, MiB or GiB (K, M, G too); a bare number is bytes. Malformed values are
 * ignored, so the library's defaults apply.
 */
import type { UploaderOptions } from "../types.ts";

const UNIT: Record<string, number> = { "": 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

/** `8MiB` -> 8388608; undefined when absent or malformed (the library's default applies). */
export function parseSize(value: string | null): number | undefined {
  if (value === null) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const factor = m ? UNIT[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || factor === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * factor);
  return bytes > 0 ? bytes : undefined;
}

export function optionsFromQuery(search: string): UploaderOptions {
  const q = new URLSearchParams(search);
  const options: UploaderOptions = { endpoint: q.get("endpoint") || "/files" };
  const token = q.get("token");
  if (token) options.token = token;
  const chunkSize = parseSize(q.get("chunk"));
  if (chunkSize) options.chunkSize = chunkSize;
  const checkpointInterval = parseSize(q.get("checkpoint"));
  if (checkpointInterval) options.checkpointInterval = checkpointInterval;
  const concurrency = Number(q.get("concurrency"));
  if (Number.isInteger(concurrency) && concurrency > 0) options.concurrency = concurrency;
  const hashFirst = q.get("hashFirst");
  if (hashFirst === "true" || hashFirst === "false") options.hashFirst = hashFirst === "true";
  else if (parseSize(hashFirst) !== undefined) options.hashFirst = parseSize(hashFirst);
  const hash = parseSize(q.get("hashRate"));
  const transfer = parseSize(q.get("sendRate"));
  if (hash || transfer) options.limitRate = { ...(hash ? { hash } : {}), ...(transfer ? { transfer } : {}) };
  if (q.get("staging") === "false") options.staging = false;
  const stageLimit = parseSize(q.get("stageLimit"));
  if (stageLimit) options.stageLimit = stageLimit;
  return options;
}
