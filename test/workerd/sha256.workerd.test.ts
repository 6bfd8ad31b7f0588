import * as fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createEdgeSha256 } from "../../edge/writer/sha256.ts";
import { bytesToHex } from "../../shared/digest.ts";
import { HashStateError, SHA256_STATE_MAX_LENGTH, SHA256_STATE_MIN_LENGTH } from "../../shared/sha256.ts";
import { ReferenceSha256 } from "../../shared/sha256-reference.ts";
import { encodeSha256State } from "../../shared/sha256-state.ts";
import { FIXTURE_DATA, FIXTURE_DIGEST, FIXTURE_STATES, fixtureState, LEGACY_FIXTURE, runSchedule, scheduleArbitrary } from "../support/sha256-states.ts";
import { seededBytes as seeded } from "../support/seeded.ts";

const subtleHex = async (data: Uint8Array) => bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data.slice())));

test("hash-wasm's binary as a static module hashes inside workerd and resumes from a saved state", async () => {
  const data = seeded(3 * 1024 * 1024 + 17, 42);
  const first = await createEdgeSha256();
  expect(first.implementation).toBe("hash-wasm"); // its state layout checked, no fallback
  first.update(data.subarray(0, 1_000_000));
  const state = first.save();
  expect(state.length).toBe(SHA256_STATE_MIN_LENGTH + (1_000_000 % 64));
  const resumed = await createEdgeSha256(state);
  resumed.update(data.subarray(1_000_000));
  expect(bytesToHex(resumed.digest())).toBe(await subtleHex(data));
});

test("the empty input hashes to the well-known SHA-256 of nothing", async () => {
  const h = await createEdgeSha256();
  expect(bytesToHex(h.digest())).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});

describe("states are the same bytes as Node's (test/support/sha256-states.ts, checked in Node too)", () => {
  test("the edge saves exactly the fixture states, and continues from each to the fixture digest", async () => {
    expect(await subtleHex(FIXTURE_DATA)).toBe(FIXTURE_DIGEST);
    for (const [offset, hex] of FIXTURE_STATES) {
      const h = await createEdgeSha256();
      h.update(FIXTURE_DATA.subarray(0, offset));
      expect(bytesToHex(h.save())).toBe(hex);
      const resumed = await createEdgeSha256(fixtureState(hex));
      resumed.update(FIXTURE_DATA.subarray(offset));
      expect(bytesToHex(resumed.digest())).toBe(FIXTURE_DIGEST);
    }
  });

  test("hash-wasm's own save() from Node (the format before version 1) migrates", async () => {
    const h = await createEdgeSha256(fixtureState(LEGACY_FIXTURE.state));
    const saved = h.save();
    expect(saved.length).toBeLessThanOrEqual(SHA256_STATE_MAX_LENGTH);
    h.update(FIXTURE_DATA.subarray(LEGACY_FIXTURE.offset));
    expect(bytesToHex(h.digest())).toBe(FIXTURE_DIGEST);
  });

  test("property: save -> load -> continue at random cuts equals the one-shot digest and the reference's states", async () => {
    await fc.assert(
      fc.asyncProperty(scheduleArbitrary, async (s) => {
        const { digest, states } = await runSchedule(createEdgeSha256, s);
        expect(digest).toBe(await subtleHex(s.data));
        s.cuts.forEach((cut, i) => {
          const r = new ReferenceSha256();
          r.update(s.data.subarray(0, cut));
          expect(bytesToHex(states[i] ?? new Uint8Array())).toBe(bytesToHex(encodeSha256State(r.midstate())));
        });
      }),
      { seed: 0x5257, numRuns: 40 },
    );
  });

  test("a state that cannot be loaded is a HashStateError (what the writer catches)", async () => {
    const bad = fixtureState(FIXTURE_STATES[4]?.[1] ?? "");
    bad[4] = 9;
    const err = await createEdgeSha256(bad).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HashStateError);
    expect((err as Error).name).toBe("HashStateError");
    expect((err as Error).message).toMatch(/format version 9/);
  });
});
