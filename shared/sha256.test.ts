import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as fc from "fast-check";
import { describe, expect, test } from "vitest";
import { FIXTURE_DATA, FIXTURE_DIGEST, FIXTURE_STATES, fixtureState, LEGACY_FIXTURE, runSchedule, scheduleArbitrary } from "../test/support/sha256-states.ts";
import { seededBytes } from "../test/support/seeded.ts";
import { bytesToHex } from "./digest.ts";
import { SHA256_WASM_ID } from "./generated/sha256-wasm.ts";
import { checkEngineLayout, createResumableSha256, HashStateError, isCompatibleSha256State, type Sha256Engine, sha256StateOffset } from "./sha256.ts";
import { ReferenceSha256 } from "./sha256-reference.ts";
import { decodeSha256State, encodeSha256State } from "./sha256-state.ts";

const wasmModule = new WebAssembly.Module(await readFile(new URL("./generated/sha256.wasm", import.meta.url)));
const native = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const viaHashWasm = (state?: Uint8Array) => createResumableSha256(state ? { state } : {});
const viaModule = (state?: Uint8Array) => createResumableSha256(state ? { module: wasmModule, state } : { module: wasmModule });

describe("the plain-TypeScript reference", () => {
  test("matches node:crypto across block boundaries and in odd pieces", () => {
    for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001]) {
      const data = seededBytes(size, size + 1);
      const r = new ReferenceSha256();
      for (let at = 0; at < size; at += 37) r.update(data.subarray(at, at + 37));
      expect(bytesToHex(r.digest())).toBe(native(data));
    }
  });

  test("computes the shared fixture states (a changed fixture or reference fails here)", () => {
    for (const [offset, hex] of FIXTURE_STATES) {
      const r = new ReferenceSha256();
      r.update(FIXTURE_DATA.subarray(0, offset));
      expect(bytesToHex(encodeSha256State(r.midstate()))).toBe(hex);
    }
    expect(native(FIXTURE_DATA)).toBe(FIXTURE_DIGEST);
  });
});

describe("resumable SHA-256: hash-wasm and the static-module path", () => {
  test("both run hash-wasm (its state layout is the known one), not the slower fallback", async () => {
    expect((await viaHashWasm()).implementation).toBe("hash-wasm");
    expect((await viaModule()).implementation).toBe("hash-wasm");
  });

  test("the layout check refuses an engine whose state reads differently", async () => {
    // The module engine with its words reported in the wrong order, as a changed struct would be.
    const engine = (await viaModule()) as Sha256Engine;
    const skewed: Sha256Engine = {
      ...engine,
      midstate: () => {
        const m = engine.midstate();
        return m && { ...m, words: m.words.slice().reverse() };
      },
    };
    expect(checkEngineLayout(engine)).toBe(true);
    expect(checkEngineLayout(skewed)).toBe(false);
  });

  for (const [name, create] of [
    ["hash-wasm", viaHashWasm],
    ["static module", viaModule],
  ] as const) {
    test(`${name}: saves exactly the fixture states and continues from each to the fixture digest`, async () => {
      for (const [offset, hex] of FIXTURE_STATES) {
        const h = await create();
        h.update(FIXTURE_DATA.subarray(0, offset));
        expect(bytesToHex(h.save())).toBe(hex);
        const resumed = await create(fixtureState(hex));
        resumed.update(FIXTURE_DATA.subarray(offset));
        expect(bytesToHex(resumed.digest())).toBe(FIXTURE_DIGEST);
      }
    });

    test(`${name}: property: save -> load -> continue at random cuts equals node:crypto's one-shot digest`, async () => {
      await fc.assert(
        fc.asyncProperty(scheduleArbitrary, async (s) => {
          const { digest, states } = await runSchedule(create, s);
          expect(digest).toBe(native(s.data));
          // Every saved state is the reference's midstate at that cut, byte for byte.
          s.cuts.forEach((cut, i) => {
            const r = new ReferenceSha256();
            r.update(s.data.subarray(0, cut));
            expect(bytesToHex(states[i] ?? new Uint8Array())).toBe(bytesToHex(encodeSha256State(r.midstate())));
          });
        }),
        { seed: 0x5256, numRuns: 60 },
      );
    });
  }

  test("a state saved by either path loads in the other (sizes over hash-wasm's 16 KiB window)", async () => {
    for (const size of [16 * 1024 - 1, 16 * 1024 + 1, 1_000_003]) {
      const data = seededBytes(size, size);
      const cut = Math.floor(size / 3);
      const a = await viaHashWasm();
      const b = await viaModule();
      a.update(data.subarray(0, cut));
      b.update(data.subarray(0, cut));
      const [sa, sb] = [a.save(), b.save()];
      expect(bytesToHex(sb)).toBe(bytesToHex(sa));
      const a2 = await viaModule(sa);
      const b2 = await viaHashWasm(sb);
      for (const h of [a, b, a2, b2]) h.update(data.subarray(cut));
      for (const h of [a, b, a2, b2]) expect(bytesToHex(h.digest())).toBe(native(data));
    }
  });

  test("migration: hash-wasm's own save() of the pinned build loads and continues", async () => {
    expect(LEGACY_FIXTURE.state.slice(0, 8)).toBe(SHA256_WASM_ID);
    const legacy = fixtureState(LEGACY_FIXTURE.state);
    expect(isCompatibleSha256State(legacy)).toBe(true);
    expect(sha256StateOffset(legacy)).toBe(LEGACY_FIXTURE.offset);
    for (const create of [viaHashWasm, viaModule]) {
      const h = await create(legacy);
      // Saved again, it is in the new format: the reference's midstate at 300.
      const r = new ReferenceSha256();
      r.update(FIXTURE_DATA.subarray(0, LEGACY_FIXTURE.offset));
      expect(bytesToHex(h.save())).toBe(bytesToHex(encodeSha256State(r.midstate())));
      h.update(FIXTURE_DATA.subarray(LEGACY_FIXTURE.offset));
      expect(bytesToHex(h.digest())).toBe(FIXTURE_DIGEST);
    }
  });
});

describe("loading a bad state throws HashStateError saying why", () => {
  const good = fixtureState(FIXTURE_STATES.find(([offset]) => offset === 500)?.[1] ?? "");
  const edit = (f: (b: Uint8Array) => void, from = good) => {
    const b = from.slice();
    f(b);
    return b;
  };
  const withCount = (count: bigint) => edit((b) => new DataView(b.buffer).setBigUint64(37, count));
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["empty", new Uint8Array(), /no "S256" header/],
    ["wrong magic", edit((b) => void (b[0] = 0x54)), /no "S256" header/],
    ["unknown version", edit((b) => void (b[4] = 2)), /format version 2 is not one this build reads \(1\)/],
    ["version 0", edit((b) => void (b[4] = 0)), /format version 0/],
    ["header cut short", good.subarray(0, 40), /45\.\.108 bytes, got 40/],
    ["too long", Uint8Array.from([...good, ...new Uint8Array(100)]), /45\.\.108 bytes/],
    ["tail shorter than the count says", good.subarray(0, good.length - 1), /byte count 500 needs a 52-byte tail, the state has 51/],
    ["count changed", withCount(501n), /byte count 501 needs a 53-byte tail, the state has 52/],
    ["count beyond 2^53", withCount(2n ** 60n + 52n), /beyond 2\^53/],
    ["another hash-wasm build", edit((b) => void (b[0] = (b[0] ?? 0) ^ 0xff), fixtureState(LEGACY_FIXTURE.state)), /layout is unknown/],
    ["hash-wasm state cut short", fixtureState(LEGACY_FIXTURE.state).subarray(0, 115), /no "S256" header/],
  ];
  for (const [name, state, message] of cases) {
    test(name, async () => {
      expect(isCompatibleSha256State(state)).toBe(false);
      expect(() => decodeSha256State(state)).toThrow(message);
      for (const create of [viaHashWasm, viaModule]) {
        const err = await create(state).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(HashStateError);
        expect((err as Error).name).toBe("HashStateError");
        expect((err as Error).message).toMatch(message);
      }
    });
  }

  test("a state within a larger buffer decodes from its own bytes", () => {
    const buffer = new Uint8Array(good.length + 10);
    buffer.set(good, 7);
    expect(decodeSha256State(buffer.subarray(7, 7 + good.length)).count).toBe(500);
  });
});
