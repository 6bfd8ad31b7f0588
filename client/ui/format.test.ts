import { describe, expect, test } from "vitest";
import type { UploadSnapshot } from "../types.ts";
import { formatBytes, formatEta } from "../progress.ts";
import { canResumeWithoutFile, hookState, rowMessage, stagedHook, stagedText } from "./format.ts";

const base: UploadSnapshot = {
  key: "k",
  name: "a.bin",
  size: 10,
  type: "",
  lastModified: 0,
  state: { kind: "hashing" },
  hash: { bytes: 0, total: 10, bytesPerSecond: 0, etaSeconds: undefined },
  transfer: { bytes: 0, total: 10, bytesPerSecond: 0, etaSeconds: undefined },
  hasHandle: false,
  counters: { hashRead: 0, sent: 0 },
};

describe("format", () => {
  test("sizes in binary units, times left in words", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(64 * 1024 * 1024)).toBe("64.0 MiB");
    expect(formatEta(undefined)).toBe("");
    expect(formatEta(4.2)).toBe("5 s left");
    expect(formatEta(75)).toBe("1 min 15 s left");
    expect(formatEta(3 * 3600 + 60)).toBe("3 h 1 min left");
  });

  test("the library's extra states map onto the hook vocabulary", () => {
    expect(hookState({ kind: "busy", reason: "other-tab" })).toBe("paused");
    expect(hookState({ kind: "queued" })).toBe("hashing");
    expect(hookState({ kind: "interrupted", reason: "needs-file" })).toBe("interrupted");
  });

  test("an interrupted row says whether one click resumes it or the file is needed again", () => {
    expect(rowMessage({ ...base, state: { kind: "interrupted", reason: "needs-file" } })).toMatch(/same file again/);
    expect(rowMessage({ ...base, hasHandle: true, state: { kind: "interrupted", reason: "reload" } })).toMatch(/Press Resume/);
    expect(rowMessage({ ...base, hasHandle: true, state: { kind: "interrupted", reason: "needs-permission" } })).toMatch(/allow the browser/);
  });

  test("a failed row shows the library's message, or says why and what to do when there is none", () => {
    expect(rowMessage({ ...base, state: { kind: "failed", error: { code: "NETWORK", message: "Offline since 10:02.", retryable: true } } })).toBe(
      "Offline since 10:02.",
    );
    expect(rowMessage({ ...base, state: { kind: "failed", error: { code: "NETWORK", message: "", retryable: true } } })).toMatch(
      /connection .* lost\. Check your connection, then press Resume\./,
    );
  });

  test("the copy kept in this browser: data-staged, the row's line, and one click to resume from it", () => {
    expect(stagedHook(undefined)).toBeUndefined();
    expect(stagedHook({ kind: "kept" })).toBe("true");
    expect(stagedHook({ kind: "writing", bytes: 1 })).toBe("writing");
    expect(stagedHook({ kind: "full" })).toBe("full");
    expect(stagedHook({ kind: "off" })).toBe("off");
    for (const kind of ["unavailable", "unusable", "none", "slow"] as const) expect(stagedHook({ kind })).toBe("false");
    expect(stagedHook({ kind: "over-limit", why: "quota", limit: 1 })).toBe("false");

    expect(stagedText({ ...base, staged: { kind: "kept" } })).toBe("Kept in this browser so it can continue after a crash.");
    expect(stagedText({ ...base, staged: { kind: "over-limit", why: "limit", limit: 1024 } })).toMatch(/^Not kept in this browser \(larger than 1\.0 KiB\)/);
    expect(stagedText({ ...base, staged: { kind: "kept" }, fromCopy: true })).toBe("Continuing from the copy kept in this browser.");
    expect(stagedText({ ...base, staged: { kind: "off" } })).toBe("");
    expect(stagedText({ ...base, staged: { kind: "slow" } })).toMatch(/^Not kept in this browser \(its storage is in memory here, as in a private window/);
    expect(stagedText({ ...base, state: { kind: "done", digest: `sha256:${"0".repeat(64)}`, blobUrl: "/b", bytesSent: 10 }, staged: { kind: "kept" } })).toBe(
      "",
    );

    const interrupted: UploadSnapshot = { ...base, state: { kind: "interrupted", reason: "reload" } };
    expect(canResumeWithoutFile(interrupted)).toBe(false);
    expect(canResumeWithoutFile({ ...interrupted, staged: { kind: "kept" } })).toBe(true);
    expect(rowMessage({ ...interrupted, staged: { kind: "kept" } })).toMatch(/continue from the copy kept in this browser/);
    expect(canResumeWithoutFile({ ...base, state: { kind: "interrupted", reason: "needs-file" }, staged: { kind: "unusable" } })).toBe(false);
  });
});
