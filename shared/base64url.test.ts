import { describe, expect, test } from "vitest";
import { seededBytes } from "../test/support/seeded.ts";
import { fromBase64url, toBase64url } from "./base64url.ts";

describe("base64url", () => {
  test("round-trips every length from 0 to 64 bytes, unpadded and URL-safe", () => {
    for (let n = 0; n <= 64; n++) {
      const bytes = seededBytes(n, n + 1);
      const text = toBase64url(bytes);
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(fromBase64url(text)).toEqual(Uint8Array.from(bytes));
    }
  });

  test("refuses a non-canonical last character (spare bits set), so one MAC has one spelling", () => {
    const text = toBase64url(seededBytes(32, 7)); // 43 characters, 2 spare bits in the last
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const bytes = fromBase64url(text);
    const sameBytes = [...alphabet].filter((c) => {
      const decoded = fromBase64url(text.slice(0, -1) + c);
      return decoded !== undefined && decoded.every((b, i) => b === bytes?.[i]);
    });
    expect(sameBytes).toEqual([text.at(-1)]);
    // Each of the 16 canonical last characters is still a valid (other) value.
    expect([...alphabet].filter((c) => fromBase64url(text.slice(0, -1) + c) !== undefined)).toHaveLength(16);
  });

  test("refuses padding, other alphabets and impossible lengths", () => {
    expect(fromBase64url("AAAA=")).toBeUndefined();
    expect(fromBase64url("ab+/")).toBeUndefined();
    expect(fromBase64url("abcde")).toBeUndefined();
    expect(fromBase64url("")).toEqual(new Uint8Array(0));
  });
});
