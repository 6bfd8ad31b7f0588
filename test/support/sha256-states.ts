/**
 * Saved SHA-256 states shared by the Node and workerd tests, so a state made on one side is
 * proven to load on the other: both check that their own hasher saves exactly these bytes and
 * that loading them continues to the right digest.
 *
 * The version-1 states were computed with the plain-TypeScript reference (shared/sha256-reference.ts)
 * over `seededBytes(1000, 14)`; the unit test recomputes them, so an edit here cannot go unnoticed.
 */
import * as fc from "fast-check";
import { bytesToHex, hexToBytes } from "../../shared/digest.ts";
import type { ResumableSha256 } from "../../shared/sha256.ts";
import { seededBytes } from "./seeded.ts";

export const FIXTURE_DATA = seededBytes(1000, 14);
export const FIXTURE_DIGEST = "103d334bd2d06a14f3d4b817000bf590fac17bcfe9258e1c2598505030beb6dd";

/** [bytes hashed, state] for FIXTURE_DATA: around every block boundary of the first two blocks. */
export const FIXTURE_STATES: ReadonlyArray<readonly [number, string]> = [
  [0, "53323536016a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd190000000000000000"],
  [1, "53323536016a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd190000000000000001ce"],
  [3, "53323536016a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd190000000000000003ce0eaf"],
  [
    55,
    "53323536016a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd190000000000000037ce0eaf70a2485c32789b965ce602753b11f7a4f994ca25b44879df9edc2a4966b3a65bd901731b62a50608f3d9fd524c34a2b50f4a17d7",
  ],
  [
    56,
    "53323536016a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd190000000000000038ce0eaf70a2485c32789b965ce602753b11f7a4f994ca25b44879df9edc2a4966b3a65bd901731b62a50608f3d9fd524c34a2b50f4a17d7c4",
  ],
  [
    63,
    "53323536016a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19000000000000003fce0eaf70a2485c32789b965ce602753b11f7a4f994ca25b44879df9edc2a4966b3a65bd901731b62a50608f3d9fd524c34a2b50f4a17d7c4070edf397aff6e",
  ],
  [64, "5332353601a64fbd4c4bd3717d6bf720fd84cb02038e7a7b1a213c0dc02569859a24d212630000000000000040"],
  [65, "5332353601a64fbd4c4bd3717d6bf720fd84cb02038e7a7b1a213c0dc02569859a24d212630000000000000041f5"],
  [
    127,
    "5332353601a64fbd4c4bd3717d6bf720fd84cb02038e7a7b1a213c0dc02569859a24d21263000000000000007ff584da584352f8fe2b3191ad04dad37ded5eb519a6d61d463849b5c3095e6fb010badd95580cb00c95c95f313abc3618c0a19943e908cebc7063f5df45a61e",
  ],
  [128, "53323536010e49de640e04157a3ba30b6f4265280600b8bfb4289da4b176e57aa6992c407b0000000000000080"],
  [129, "53323536010e49de640e04157a3ba30b6f4265280600b8bfb4289da4b176e57aa6992c407b0000000000000081dd"],
  [
    500,
    "5332353601466d5b7f16317f2a961f7204c457586be0216dedc4525d46c0df2526bfa40b3d00000000000001f40d7b23eb8e374c8f719db4e7aa3921fc166a2179afa1867f8e56b1a368c9e6c43d7a47eedbb7a12526e4237b942f7ac95b394db4",
  ],
  [
    999,
    "5332353601e855fa34d1e340f8e3c330282bc0a3990807428c05b72f23d7e13384a17b378500000000000003e7bceac12360161c1eefcb88850502ce075f03ade22f48c7761ba3c7015435fe4589cbc38ee45e71",
  ],
  [
    1000,
    "5332353601e855fa34d1e340f8e3c330282bc0a3990807428c05b72f23d7e13384a17b378500000000000003e8bceac12360161c1eefcb88850502ce075f03ade22f48c7761ba3c7015435fe4589cbc38ee45e71e6",
  ],
];

/**
 * hash-wasm 4.13.0's own `save()` after FIXTURE_DATA[0, 300): binary id 8ed695a3 + its 112-byte
 * struct (the format before version 1), with stale bytes after the 44-byte tail as it leaves them.
 */
export const LEGACY_FIXTURE = {
  offset: 300,
  state:
    "8ed695a334446144c055dbe8af28100290ad77eb14a52e242a13dfa829ba9c6547728bb7cdaf171080565bb07c2bdf6f00000000000000000000000000000000000000002c01000000000000c37248c0ee0bdf31f3289acbe0870124c25a1038809cdd9d7111d0d8b071a3802000000000000000",
};

export const fixtureState = (hex: string) => hexToBytes(hex);

/** An input and where to save, load into a new hasher and go on. */
export interface Schedule {
  data: Uint8Array;
  cuts: number[];
}

/**
 * Seeded inputs up to 40 KiB (over two of hash-wasm's 16 KiB I/O windows) with up to six sorted
 * cut points, biased towards block boundaries (64k - 1, 64k, 64k + 1) where tails appear and vanish.
 */
export const scheduleArbitrary: fc.Arbitrary<Schedule> = fc
  .record({
    size: fc.integer({ min: 0, max: 40 * 1024 }),
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    cuts: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(-1, 0, 1, 7)), { maxLength: 6 }),
  })
  .map(({ size, seed, cuts }) => ({
    data: seededBytes(size, seed),
    cuts: cuts
      .map(([at, nudge]) => {
        const raw = Math.floor(at * size);
        // nudge 7 keeps the raw point; otherwise snap to a block boundary and step off it.
        return nudge === 7 ? raw : Math.min(size, Math.max(0, Math.floor(raw / 64) * 64 + nudge));
      })
      .sort((a, b) => a - b),
  }));

/**
 * Hashes `s.data`, and at every cut saves the state and continues in a new hasher loaded from it.
 * Returns the digest (hex) and the states saved, in order.
 */
export async function runSchedule(create: (state?: Uint8Array) => Promise<ResumableSha256>, s: Schedule): Promise<{ digest: string; states: Uint8Array[] }> {
  let hasher = await create();
  let at = 0;
  const states: Uint8Array[] = [];
  for (const cut of s.cuts) {
    hasher.update(s.data.subarray(at, cut));
    at = cut;
    const state = hasher.save();
    states.push(state);
    hasher = await create(state);
  }
  hasher.update(s.data.subarray(at));
  return { digest: bytesToHex(hasher.digest()), states };
}
