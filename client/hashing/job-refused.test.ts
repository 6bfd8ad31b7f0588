import { createHash } from "node:crypto";
import { expect, test, vi } from "vitest";
import { seededBytes } from "../../test/support/seeded.ts";
import { CHECKPOINT_VERSION, createMemoryCheckpointStore } from "./checkpoint.ts";
import { runHashJob } from "./job.ts";

// The hasher is the final judge of a state: one that checkCheckpoint accepts may still be refused
// when it is loaded (a stricter hasher after an upgrade, say). Simulated by refusing every state.
vi.mock("../../shared/sha256.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../shared/sha256.ts")>();
  return {
    ...real,
    createResumableSha256: (options: Parameters<typeof real.createResumableSha256>[0] = {}) =>
      options.state ? Promise.reject(new real.HashStateError("refused by this test")) : real.createResumableSha256(options),
  };
});

test("a checkpoint whose state the hasher refuses is deleted and hashing restarts at 0, without an error", async () => {
  const { createResumableSha256 } = await vi.importActual<typeof import("../../shared/sha256.ts")>("../../shared/sha256.ts");
  const size = 200_000;
  const bytes = seededBytes(size, 5);
  const h = await createResumableSha256();
  h.update(bytes.subarray(0, 70_000));
  const checkpoints = createMemoryCheckpointStore();
  checkpoints.entries.set("k", { v: CHECKPOINT_VERSION, size, offset: 70_000, state: h.save() });
  const deleted: string[] = [];
  const store = { ...checkpoints, delete: async (key: string) => (deleted.push(key), checkpoints.delete(key)) };
  const starts: Array<number | undefined> = [];
  const r = await runHashJob({
    key: "k",
    size,
    checkpoints: store,
    onStart: (at) => starts.push(at),
    read: async (s, e) => bytes.slice(s, e),
  });
  expect(r).toMatchObject({ kind: "done", resumedAt: undefined, bytesRead: size, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` });
  expect(starts).toEqual([undefined]);
  expect(deleted).toEqual(["k"]);
});
