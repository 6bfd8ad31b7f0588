import { describe, expect, test } from "vitest";
import { optionsFromQuery, parseSize } from "./config.ts";

describe("parseSize", () => {
  test("reads bytes and binary units, and refuses anything else", () => {
    expect(parseSize("8MiB")).toBe(8 * 1024 * 1024);
    expect(parseSize("16m")).toBe(16 * 1024 * 1024);
    expect(parseSize("1.5KiB")).toBe(1536);
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize("8 MB")).toBeUndefined(); // decimal units are not guessed at
    expect(parseSize("-1")).toBeUndefined();
    expect(parseSize("0")).toBeUndefined();
    expect(parseSize(null)).toBeUndefined();
  });
});

describe("optionsFromQuery", () => {
  test("defaults to /files on this origin with nothing else set", () => {
    expect(optionsFromQuery("")).toEqual({ endpoint: "/files" });
  });

  test("takes endpoint, token, sizes, concurrency, hashFirst and rate limits from the query", () => {
    const options = optionsFromQuery(
      "?endpoint=https%3A%2F%2Fedge.example%2Ffiles&token=abc.def&chunk=8MiB&checkpoint=4MiB&concurrency=3&hashFirst=false&hashRate=50MiB",
    );
    expect(options).toEqual({
      endpoint: "https://edge.example/files",
      token: "abc.def",
      chunkSize: 8 * 1024 * 1024,
      checkpointInterval: 4 * 1024 * 1024,
      concurrency: 3,
      hashFirst: false,
      limitRate: { hash: 50 * 1024 * 1024 },
    });
    expect(optionsFromQuery("?hashFirst=1GiB").hashFirst).toBe(1024 ** 3);
    expect(optionsFromQuery("?sendRate=1MiB").limitRate).toEqual({ transfer: 1024 * 1024 });
  });

  test("ignores malformed values so the library's defaults apply", () => {
    expect(optionsFromQuery("?chunk=lots&concurrency=-2&hashFirst=maybe&endpoint=")).toEqual({ endpoint: "/files" });
  });
});
