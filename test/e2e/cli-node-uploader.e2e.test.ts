/**
 * The Node library (file-backed store, in-process hashing) against the real stack: a stopped hash
 * resumes from its checkpoint with `hashing: "resumable"` and from 0 with node:crypto; pause and
 * resume continue the same upload, cancel removes it on the edge, an upload the edge lost
 * starts over from 0 and says so (UPLOAD_GONE), and a digest hashed while uploading is declared
 * on the next PATCH.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { createNodeUploader, fileFromPath } from "../../client/node.ts";
import type { Uploader, UploaderEvent, UploadSnapshot } from "../../client/node.ts";
import { seededBytes } from "../support/seeded.ts";

const MiB = 1024 * 1024;
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-upload-node-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, size: number, seed: number) {
  const bytes = seededBytes(size, seed);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

function until(uploader: Uploader, key: string, ok: (u: UploadSnapshot) => boolean): Promise<UploadSnapshot> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const u = uploader.list().find((x) => x.key === key);
      if (u?.state.kind === "failed" && !ok(u)) reject(new Error(JSON.stringify(u.state.error)));
      else if (u && ok(u)) {
        clearInterval(timer);
        resolve(u);
      }
    };
    const timer = setInterval(check, 20);
  });
}

const endpoint = () => `${inject("baseUrl")}/files`;

test("pause stops the transfer; resume continues the same upload to the right digest", async () => {
  const { path, digest } = await fixture("pause.bin", 32 * MiB + 9, 41);
  const uploader = createNodeUploader({ endpoint: endpoint(), stateDir: join(dir, "s-pause"), chunkSize: 8 * MiB, limitRate: { transfer: 16 * MiB } });
  const [u] = await uploader.add([await fileFromPath(path)]);
  if (!u) throw new Error("not added");
  await until(uploader, u.key, (x) => x.transfer.bytes > 8 * MiB);
  await uploader.pause(u.key);
  const paused = uploader.list()[0];
  expect(paused?.state).toEqual({ kind: "paused" });
  const url = paused?.uploadUrl ?? "";
  const head = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
  expect(head.status).toBe(200);
  const offset = Number(head.headers.get("upload-offset"));
  expect(offset).toBeGreaterThanOrEqual(8 * MiB);
  expect(offset).toBeLessThan(32 * MiB);
  await uploader.resume(u.key);
  const done = await until(uploader, u.key, (x) => x.state.kind === "done");
  expect(done.state).toMatchObject({ kind: "done", digest });
  expect(done.uploadUrl).toBe(url); // the same upload, not a new one
  uploader.destroy();
});

test.each([
  ["resumable", "from its checkpoint"],
  ["native", "from byte 0"],
] as const)("hashing: %s — a hash stopped mid-way runs again %s, to the right digest", async (hashing, _from) => {
  const resumes = hashing === "resumable";
  const size = 20 * MiB + 3;
  const { path, digest } = await fixture(`hash-${hashing}.bin`, size, 44);
  const stateDir = join(dir, `s-hash-${hashing}`);
  const options = { endpoint: endpoint(), stateDir, chunkSize: 8 * MiB, hashing, hashFirst: true };
  // Hashed first at 12 MiB/s, stopped (the uploader destroyed) past 10 MiB.
  const first = createNodeUploader({ ...options, limitRate: { hash: 12 * MiB } });
  const [u] = await first.add([await fileFromPath(path)]);
  if (!u) throw new Error("not added");
  await until(first, u.key, (x) => x.hash.bytes >= 10 * MiB);
  first.destroy();

  const second = createNodeUploader(options);
  await second.restore();
  await second.add([await fileFromPath(path)]);
  const done = await until(second, u.key, (x) => x.state.kind === "done");
  expect(done.state).toMatchObject({ kind: "done", digest });
  if (resumes) expect(done.resumedHashAt).toBeGreaterThanOrEqual(8 * MiB);
  else expect(done.resumedHashAt).toBeUndefined();
  expect(done.counters.hashRead).toBe(size - (done.resumedHashAt ?? 0));
  second.destroy();
});

test("a file rewritten on disk while paused fails on resume with FILE_UNREADABLE; the edge gets none of the new bytes", async () => {
  const { path } = await fixture("rewritten.bin", 24 * MiB, 45);
  const uploader = createNodeUploader({ endpoint: endpoint(), stateDir: join(dir, "s-rewritten"), chunkSize: 8 * MiB, limitRate: { transfer: 12 * MiB } });
  const [u] = await uploader.add([await fileFromPath(path)]);
  if (!u) throw new Error("not added");
  await until(uploader, u.key, (x) => x.transfer.bytes > 8 * MiB && x.uploadUrl !== undefined);
  await uploader.pause(u.key);
  const url = uploader.list()[0]?.uploadUrl ?? "";
  const sent = uploader.list()[0]?.counters.sent ?? 0;
  await writeFile(path, seededBytes(24 * MiB + 1, 46));
  await uploader.resume(u.key);
  const failed = await until(uploader, u.key, (x) => x.state.kind === "failed");
  expect(failed.state).toMatchObject({ kind: "failed", error: { code: "FILE_UNREADABLE", retryable: false } });
  expect(failed.counters.sent).toBe(sent); // no PATCH was started after the rewrite
  const head = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
  expect(Number(head.headers.get("upload-offset"))).toBeLessThanOrEqual(sent);
  uploader.destroy();
});

test("cancel removes the upload on the edge", async () => {
  const { path } = await fixture("cancel.bin", 24 * MiB, 42);
  const uploader = createNodeUploader({ endpoint: endpoint(), stateDir: join(dir, "s-cancel"), chunkSize: 8 * MiB, limitRate: { transfer: 8 * MiB } });
  const [u] = await uploader.add([await fileFromPath(path)]);
  if (!u) throw new Error("not added");
  const running = await until(uploader, u.key, (x) => x.transfer.bytes > 8 * MiB && x.uploadUrl !== undefined);
  await uploader.cancel(u.key);
  expect(uploader.list()[0]?.state).toEqual({ kind: "cancelled" });
  const head = await fetch(running.uploadUrl ?? "", { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
  expect(head.status).toBe(404);
  uploader.destroy();
});

test("an upload the edge no longer has starts over from 0 and says UPLOAD_GONE", async () => {
  const { path, digest } = await fixture("gone.bin", 24 * MiB + 1, 43);
  const stateDir = join(dir, "s-gone");
  const first = createNodeUploader({ endpoint: endpoint(), stateDir, chunkSize: 8 * MiB, limitRate: { transfer: 12 * MiB } });
  const [u] = await first.add([await fileFromPath(path)]);
  if (!u) throw new Error("not added");
  const running = await until(first, u.key, (x) => x.transfer.bytes > 8 * MiB && x.uploadUrl !== undefined);
  await first.pause(u.key);
  first.destroy();
  // Someone (or expiry) removes the upload behind the client's back.
  expect((await fetch(running.uploadUrl ?? "", { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" } })).status).toBe(204);

  const second = createNodeUploader({ endpoint: endpoint(), stateDir, chunkSize: 8 * MiB });
  const events: UploaderEvent[] = [];
  second.on((e) => events.push(e));
  await second.restore();
  await second.add([await fileFromPath(path)]);
  const done = await until(second, u.key, (x) => x.state.kind === "done");
  expect(done.state).toMatchObject({ kind: "done", digest });
  expect(done.notice?.code).toBe("UPLOAD_GONE");
  expect(events.some((e) => e.type === "error" && e.error.code === "UPLOAD_GONE")).toBe(true);
  expect(done.resumedUploadAt).toBeUndefined();
  expect(done.counters.sent).toBe(24 * MiB + 1);
  second.destroy();
});

/** An HTTP proxy to `target` that records each request's method and tus headers. */
async function recordingProxy(target: string) {
  const seen: { method: string; offset: string | undefined; reprDigest: string | undefined }[] = [];
  const server = createServer((req, res) => {
    const h = req.headers;
    seen.push({ method: req.method ?? "", offset: h["upload-offset"] as string | undefined, reprDigest: h["repr-digest"] as string | undefined });
    const up = request(new URL(req.url ?? "/", target), { method: req.method, headers: h }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test("hashing alongside the transfer: the digest goes on every PATCH once known, not only on the last", async () => {
  const { path, digest } = await fixture("parallel.bin", 24 * MiB + 5, 44);
  const proxy = await recordingProxy(inject("baseUrl"));
  try {
    // 8 MiB/s: each 8 MiB PATCH takes about a second, hashing 24 MiB a fraction of that.
    const uploader = createNodeUploader({
      endpoint: `${proxy.url}/files`,
      stateDir: join(dir, "s-parallel"),
      chunkSize: 8 * MiB,
      hashFirst: false,
      limitRate: { transfer: 8 * MiB },
    });
    const [u] = await uploader.add([await fileFromPath(path)]);
    if (!u) throw new Error("not added");
    const done = await until(uploader, u.key, (x) => x.state.kind === "done");
    expect(done.state).toMatchObject({ kind: "done", digest });
    const repr = `sha-256=:${Buffer.from(digest.slice(7), "hex").toString("base64")}:`;
    const patches = proxy.seen.filter((r) => r.method === "PATCH");
    expect(patches.map((p) => Number(p.offset))).toEqual([0, 8 * MiB, 16 * MiB, 24 * MiB]);
    expect(proxy.seen.find((r) => r.method === "POST")?.reprDigest).toBeUndefined(); // not known at creation
    expect(patches.slice(1).map((p) => p.reprDigest)).toEqual([repr, repr, repr]);
  } finally {
    await proxy.close();
  }
});

test("hashing alongside, a file whose blob the namespace already has: the edge completes it once the digest arrives, the rest is never sent", async () => {
  const size = 24 * MiB + 5;
  const { path, digest } = await fixture("twice.bin", size, 45);
  const options = { endpoint: endpoint(), chunkSize: 8 * MiB, hashFirst: false, limitRate: { transfer: 8 * MiB } } as const;
  const first = createNodeUploader({ ...options, stateDir: join(dir, "s-twice-1") });
  const [a] = await first.add([await fileFromPath(path)]);
  if (!a) throw new Error("not added");
  expect((await until(first, a.key, (x) => x.state.kind === "done")).counters.sent).toBe(size);

  const second = createNodeUploader({ ...options, stateDir: join(dir, "s-twice-2") });
  const [b] = await second.add([await fileFromPath(path)]);
  if (!b) throw new Error("not added");
  const done = await until(second, b.key, (x) => x.state.kind === "done");
  expect(done.state).toMatchObject({ kind: "done", digest });
  expect(done.counters.sent).toBeLessThanOrEqual(16 * MiB); // one or two chunks, not three and a bit
});
