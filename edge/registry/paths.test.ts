import { describe, expect, test } from "vitest";
import type { Sha256Digest } from "../../shared/digest.ts";
import {
  InvalidPathComponentError,
  blobDataPath,
  isValidNamespace,
  layerLinkPath,
  parseRepositoryKey,
  parseUploadKey,
  uploadHashStatePath,
  uploadPrefix,
  uploadStartedAtPath,
  uploadTailPath,
  validateNamespace,
  validateUploadId,
} from "./paths.ts";
import { keyProblem } from "../storage/base.ts";

const HEX = "3a".repeat(32);
const DIGEST: Sha256Digest = `sha256:${HEX}`;
const ID = "0123456789abcdef".repeat(4);

describe("paths: Docker distribution's layout under docker/registry/v2/", () => {
  test("blob data, layer link, startedat and hash state keys are distribution's", () => {
    expect(blobDataPath(DIGEST)).toBe(`docker/registry/v2/blobs/sha256/3a/${HEX}/data`);
    expect(layerLinkPath("team/app", DIGEST)).toBe(`docker/registry/v2/repositories/team/app/_layers/sha256/${HEX}/link`);
    expect(uploadStartedAtPath("team/app", ID)).toBe(`docker/registry/v2/repositories/team/app/_uploads/${ID}/startedat`);
    expect(uploadHashStatePath("team/app", ID, 8388608)).toBe(`docker/registry/v2/repositories/team/app/_uploads/${ID}/hashstates/sha256/8388608`);
  });

  test("every key built is one the storage wrapper accepts", () => {
    for (const key of [blobDataPath(DIGEST), layerLinkPath("a.b-c_d/e", DIGEST), uploadTailPath("x", ID, 0), `${uploadPrefix("x", ID)}info`]) {
      expect(keyProblem(key), key).toBeUndefined();
    }
  });

  test("namespaces follow distribution's grammar and length limit", () => {
    for (const ok of ["anonymous", "a", "team/app", "a.b-c_d/e0", "x".repeat(255)]) expect(isValidNamespace(ok), ok).toBe(true);
    const bad = [
      "",
      "a__b",
      "Team",
      "a/../b",
      "..",
      "a/./b",
      "a//b",
      "/a",
      "a/",
      "a%2Fb",
      "a%2fb",
      "-a",
      "a-",
      "a..b",
      "_uploads",
      "a/_uploads/b",
      "a b",
      "ä",
      "x".repeat(256),
    ];
    for (const ns of bad) {
      expect(isValidNamespace(ns), ns).toBe(false);
      expect(() => validateNamespace(ns)).toThrow(InvalidPathComponentError);
      expect(() => layerLinkPath(ns, DIGEST)).toThrow(InvalidPathComponentError);
    }
    const err = (() => {
      try {
        validateNamespace("a/../b");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ component: "namespace", value: "a/../b" });
  });

  test("upload ids are exactly 64 lower-case hex characters", () => {
    expect(validateUploadId(ID)).toBe(ID);
    for (const id of ["", ID.slice(1), `${ID}0`, ID.toUpperCase(), `${ID.slice(0, 62)}/x`, `..${ID.slice(2)}`, `${ID.slice(0, 61)}%2F`]) {
      expect(() => uploadPrefix("ns", id), id).toThrow(InvalidPathComponentError);
    }
  });

  test("digests and offsets are validated before they become key components", () => {
    expect(() => blobDataPath("sha256:ABC" as Sha256Digest)).toThrow(InvalidPathComponentError);
    expect(() => blobDataPath(`sha256:${HEX}/../x` as Sha256Digest)).toThrow(InvalidPathComponentError);
    expect(() => uploadHashStatePath("ns", ID, -1)).toThrow(InvalidPathComponentError);
    expect(() => uploadTailPath("ns", ID, 1.5)).toThrow(InvalidPathComponentError);
  });

  test("keys under repositories/ parse back into namespace and upload id or linked digest", () => {
    expect(parseUploadKey(uploadStartedAtPath("team/app", ID))).toEqual({ namespace: "team/app", id: ID });
    expect(parseUploadKey(uploadHashStatePath("a", ID, 5))).toEqual({ namespace: "a", id: ID });
    expect(parseRepositoryKey(layerLinkPath("team/app", DIGEST))).toEqual({ kind: "link", namespace: "team/app", digest: DIGEST });
    for (const foreign of [
      blobDataPath(DIGEST),
      `docker/registry/v2/repositories/team/_uploads/${ID.slice(1)}/info`,
      `docker/registry/v2/repositories/Team/_uploads/${ID}/info`,
      `docker/registry/v2/repositories/team/_uploads/${ID}`,
      "other/prefix",
    ]) {
      expect(parseUploadKey(foreign), foreign).toBeUndefined();
    }
  });
});
