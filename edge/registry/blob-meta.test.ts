import { describe, expect, test } from "vitest";
import { formatUploadMetadata } from "../../shared/protocol.ts";
import { blobMetaFromUploadMetadata, contentDisposition, readBlobMeta, sanitizeFilename, writeBlobMeta } from "./blob-meta.ts";
import { layerLinkPath, layerMetaPath } from "./paths.ts";
import { createMemoryDriver } from "../storage/memory.ts";

const DIGEST = `sha256:${"ab".repeat(32)}` as const;

describe("contentDisposition", () => {
  test.each([
    [undefined, "attachment"],
    ["", "attachment"],
    ["report.pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`],
    ["a b(1)'*.txt", `attachment; filename="a b(1)'*.txt"; filename*=UTF-8''a%20b%281%29%27%2A.txt`],
    ['say "hi".txt', `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`],
    ["dir\\name.txt", `attachment; filename="name.txt"; filename*=UTF-8''name.txt`],
    ["100%.bin", `attachment; filename="100_.bin"; filename*=UTF-8''100%25.bin`],
    ["日本.txt", `attachment; filename="__.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt`],
  ])("%j -> %s", (name, header) => {
    expect(contentDisposition(name)).toBe(header);
  });
});

describe("sanitizeFilename", () => {
  test("keeps the last path segment, drops control and bidi-override characters, cuts at 255 characters", () => {
    expect(sanitizeFilename("../../etc/passwd")).toBe("passwd");
    expect(sanitizeFilename("C:\\Users\\x\\evil.exe")).toBe("evil.exe");
    expect(sanitizeFilename("a\r\nb\u0000c\u202Etxt.exe")).toBe("abctxt.exe");
    expect(sanitizeFilename("..")).toBeUndefined();
    expect(sanitizeFilename("dir/")).toBeUndefined();
    expect(sanitizeFilename("😀".repeat(300))).toBe("😀".repeat(255));
  });
});

describe("blob meta", () => {
  test("from Upload-Metadata: filename and filetype, a type that is not a media type is dropped", () => {
    expect(blobMetaFromUploadMetadata(formatUploadMetadata({ filename: "a/b.iso", filetype: "Application/X-ISO9660-Image" }))).toEqual({
      filename: "b.iso",
      type: "application/x-iso9660-image",
    });
    expect(blobMetaFromUploadMetadata(formatUploadMetadata({ filetype: "text/html\r\nX-Evil: 1" }))).toEqual({});
    expect(blobMetaFromUploadMetadata("not metadata at all,,")).toEqual({});
    expect(blobMetaFromUploadMetadata(undefined)).toEqual({});
  });

  test("written beside the link, read back; nothing written when there is nothing to say; unreadable meta reads as none", async () => {
    const driver = createMemoryDriver();
    await writeBlobMeta(driver, "team/app", DIGEST, {});
    expect((await driver.list("")).keys).toEqual([]);
    await writeBlobMeta(driver, "team/app", DIGEST, { filename: "x/report.pdf", type: "application/pdf" });
    expect(layerMetaPath("team/app", DIGEST)).toBe(layerLinkPath("team/app", DIGEST).replace(/link$/, "meta"));
    expect(await readBlobMeta(driver, "team/app", DIGEST)).toEqual({ filename: "report.pdf", type: "application/pdf" });
    expect(await readBlobMeta(driver, "other", DIGEST)).toEqual({});
    await driver.put(layerMetaPath("team/app", DIGEST), "{not json");
    expect(await readBlobMeta(driver, "team/app", DIGEST)).toEqual({});
  });
});
