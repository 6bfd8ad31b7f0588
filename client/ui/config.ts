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

/** The name each setting goes by where it is read from: a query parameter, an element attribute. */
export interface OptionNames {
  endpoint: string;
  token: string;
  chunkSize: string;
  checkpointInterval: string;
  concurrency: string;
  hashFirst: string;
  hashRate: string;
  sendRate: string;
  staging?: string;
  stageLimit?: string;
}

const QUERY_NAMES: OptionNames = {
  endpoint: "endpoint",
  token: "token",
  chunkSize: "chunk",
  checkpointInterval: "checkpoint",
  concurrency: "concurrency",
  hashFirst: "hashFirst",
  hashRate: "hashRate",
  sendRate: "sendRate",
  staging: "staging",
  stageLimit: "stageLimit",
};

export function optionsFromQuery(search: string): UploaderOptions {
  const q = new URLSearchParams(search);
  return readOptions((name) => q.get(name), QUERY_NAMES);
}

/** The settings `get` finds under `names` as uploader options; malformed values are left out (the library's defaults apply). */
export function readOptions(get: (name: string) => string | null, names: OptionNames): UploaderOptions {
  const options: UploaderOptions = { endpoint: get(names.endpoint) || "/files" };
  const token = get(names.token);
  if (token) options.token = token;
  const chunkSize = parseSize(get(names.chunkSize));
  if (chunkSize) options.chunkSize = chunkSize;
  const checkpointInterval = parseSize(get(names.checkpointInterval));
  if (checkpointInterval) options.checkpointInterval = checkpointInterval;
  const concurrency = Number(get(names.concurrency));
  if (Number.isInteger(concurrency) && concurrency > 0) options.concurrency = concurrency;
  const hashFirst = get(names.hashFirst);
  if (hashFirst === "true" || hashFirst === "false") options.hashFirst = hashFirst === "true";
  else if (parseSize(hashFirst) !== undefined) options.hashFirst = parseSize(hashFirst);
  const hash = parseSize(get(names.hashRate));
  const transfer = parseSize(get(names.sendRate));
  if (hash || transfer) options.limitRate = { ...(hash ? { hash } : {}), ...(transfer ? { transfer } : {}) };
  if (names.staging && get(names.staging) === "false") options.staging = false;
  const stageLimit = names.stageLimit ? parseSize(get(names.stageLimit)) : undefined;
  if (stageLimit) options.stageLimit = stageLimit;
  return options;
}
