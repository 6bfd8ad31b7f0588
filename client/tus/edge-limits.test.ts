import { expect, test } from "vitest";
import { chooseChunkSize, discoverLimits } from "./edge-limits.ts";

const MiB = 1024 * 1024;

test("chunk size is the largest multiple of the part size within the request and the edge maximum", () => {
  const limits = { partSize: 8 * MiB, maxChunkSize: 64 * MiB };
  expect(chooseChunkSize(undefined, limits)).toBe(32 * MiB);
  expect(chooseChunkSize(30 * MiB, limits)).toBe(24 * MiB);
  expect(chooseChunkSize(1 * MiB, limits)).toBe(8 * MiB);
  expect(chooseChunkSize(500 * MiB, limits)).toBe(64 * MiB);
  expect(chooseChunkSize(500 * MiB, { partSize: 6 * MiB, maxChunkSize: 64 * MiB })).toBe(60 * MiB);
});

test("limits come from the OPTIONS headers, with defaults when absent or unreachable", async () => {
  const advertised = (async () =>
    new Response(null, { status: 204, headers: { "Upload-Part-Size": String(5 * MiB), "Upload-Max-Chunk-Size": String(20 * MiB) } })) as typeof fetch;
  expect(await discoverLimits("http://x/files", advertised)).toEqual({ partSize: 5 * MiB, maxChunkSize: 20 * MiB });
  const silent = (async () => new Response(null, { status: 204 })) as typeof fetch;
  expect(await discoverLimits("http://x/files", silent)).toEqual({ partSize: 8 * MiB, maxChunkSize: 64 * MiB });
  const down = (async () => {
    throw new TypeError("fetch failed");
  }) as typeof fetch;
  expect(await discoverLimits("http://x/files", down)).toEqual({ partSize: 8 * MiB, maxChunkSize: 64 * MiB });
});
