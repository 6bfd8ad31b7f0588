import { expect, test } from "vitest";
import { createEdgeSha256 } from "../../edge/sha256.ts";
import { bytesToHex } from "../../shared/digest.ts";
import { SHA256_STATE_LENGTH } from "../../shared/sha256.ts";
import { seededBytes as seeded } from "../support/seeded.ts";


test("hash-wasm's binary as a static module hashes inside workerd and resumes from a saved state", async () => {
  const data = seeded(3 * 1024 * 1024 + 17, 42);
  const expected = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
  const first = await createEdgeSha256();
  first.update(data.subarray(0, 1_000_000));
  const state = first.save();
  expect(state.length).toBe(SHA256_STATE_LENGTH);
  const resumed = await createEdgeSha256(state);
  resumed.update(data.subarray(1_000_000));
  expect(bytesToHex(resumed.digest())).toBe(expected);
});

test("the empty input hashes to the well-known SHA-256 of nothing", async () => {
  const h = await createEdgeSha256();
  expect(bytesToHex(h.digest())).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});
