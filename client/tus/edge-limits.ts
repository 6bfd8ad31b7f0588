/**
 * What the edge advertises about chunking (OPTIONS /files): its storage part size and the
 * largest PATCH body. Chunks are multiples of the part size so each PATCH fills whole parts
 * (the edge buffers less and a cut-off PATCH loses at most one part), and never exceed the max.
 */
import { DEFAULTS, H } from "../../shared/protocol.ts";

export interface EdgeLimits {
  partSize: number;
  maxChunkSize: number;
}

function positive(value: string | null | undefined): number | undefined {
  const n = Number(value);
  return value && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** Reads the advertised limits; the defaults of shared/protocol.ts when the edge says nothing. */
export async function discoverLimits(endpoint: string, fetchFn: typeof fetch = fetch): Promise<EdgeLimits> {
  try {
    const res = await fetchFn(endpoint, { method: "OPTIONS" });
    return {
      partSize: positive(res.headers.get(H.uploadPartSize)) ?? DEFAULTS.partSize,
      maxChunkSize: positive(res.headers.get(H.uploadMaxChunkSize)) ?? DEFAULTS.maxPatchSize,
    };
  } catch {
    // Unreachable now does not mean unreachable later: the transfer's own retries handle that.
    return { partSize: DEFAULTS.partSize, maxChunkSize: DEFAULTS.maxPatchSize };
  }
}

/** The largest multiple of the part size that is <= both the request and the edge's maximum. */
export function chooseChunkSize(requested: number | undefined, limits: EdgeLimits): number {
  if (limits.partSize > limits.maxChunkSize) return limits.maxChunkSize; // a misconfigured edge: obey its maximum
  const wanted = Math.min(requested ?? DEFAULTS.chunkSize, limits.maxChunkSize);
  return Math.max(1, Math.floor(wanted / limits.partSize)) * limits.partSize;
}
