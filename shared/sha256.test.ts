import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import { bytesToHex } from "./digest.ts";
import { createResumableSha256, HashStateError, SHA256_STATE_LENGTH } from "./sha256.ts";

const wasmModule = new WebAssembly.Module(await readFile(new URL("./generated/sha256.wasm", import.meta.url)));
const native = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("resumable SHA-256 (hash-wasm and the static-module path agree byte for byte)", () => {
  for (const size of [0, 1, 63, 64, 65, 16 * 1024 - 1, 16 * 1024 + 1, 1_000_003]) {
    test(`size ${size}: digests equal node:crypto; states equal across implementations`, async () => {
      const data = randomBytes(size);
      const a = await createResumableSha256();
      const b = await createResumableSha256({ module: wasmModule });
      const cut = Math.floor(size / 3);
      a.update(data.subarray(0, cut));
      b.update(data.subarray(0, cut));
      const sa = a.save();
      const sb = b.save();
      expect(sa.length).toBe(SHA256_STATE_LENGTH);
      expect(bytesToHex(sb)).toBe(bytesToHex(sa));
      // Cross-load: hash-wasm's state continues in the module hasher and vice versa.
      const a2 = await createResumableSha256({ module: wasmModule, state: sa });
      const b2 = await createResumableSha256({ state: sb });
      for (const h of [a, b, a2, b2]) h.update(data.subarray(cut));
      const expected = native(data);
      for (const h of [a, b, a2, b2]) expect(bytesToHex(h.digest())).toBe(expected);
    });
  }

  test("a state from another hash-wasm build or of the wrong length is refused", async () => {
    const h = await createResumableSha256();
    const state = h.save();
    const foreign = state.slice();
    foreign[0] = (foreign[0] ?? 0) ^ 0xff;
    await expect(createResumableSha256({ state: foreign })).rejects.toBeInstanceOf(HashStateError);
    await expect(createResumableSha256({ module: wasmModule, state: state.subarray(1) })).rejects.toThrow(
      /expected 116 bytes/,
    );
  });
});
