/**
 * createUploadApp (issue 16) mounted by a host Worker under /uploads: the URLs it hands out carry
 * the mount path, the host's `authorize` decides the namespace, `limits` override the vars, and
 * `onUploadComplete`, registered at the module's top level as a host does, is called by the
 * upload's Durable Object at least once per finished upload (again after it threw).
 */
import { createExecutionContext, env, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, test } from "vitest";
import { createUploadApp, type UploadCompletedEvent } from "../../edge/worker.ts";
import { recordOf } from "./events-support.ts";
import { BASE, seeded, sha256, stubOf } from "./http-support.ts";

const calls: UploadCompletedEvent[] = [];
/** Upload ids whose first hook call throws, to see the object call it again. */
const failOnce = new Set<string>();

const uploads = createUploadApp({
  // The host's own notion of a user: a header its auth layer would have set.
  authorize: (c) => c.req.header("x-user") ?? null,
  limits: { maxUploadSize: 4096 },
  onUploadComplete: (event) => {
    calls.push(event);
    if (failOnce.delete(event.id)) throw new Error("host backend down");
  },
});
const host = new Hono().route("/uploads", uploads);
host.get("/", (c) => c.text("the host's own page"));

async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await host.fetch(new Request(new URL(path, BASE), init), env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const tus = (user: string | undefined, extra: Record<string, string> = {}) => ({ "Tus-Resumable": "1.0.0", ...(user ? { "x-user": user } : {}), ...extra });

describe("createUploadApp mounted at /uploads", () => {
  test("Location, Content-Location and Upload-Blob-Url carry the mount path; authorize sets the namespace; limits apply; the hook gets the event again after it threw", async () => {
    expect(await (await call("/")).text()).toBe("the host's own page");
    const options = await call("/uploads/files", { method: "OPTIONS" });
    expect(options.headers.get("tus-max-size")).toBe("4096");
    expect((await call("/uploads/files", { method: "POST", headers: tus("team-host", { "Upload-Length": "4097" }) })).status).toBe(413);
    const refused = await call("/uploads/files", { method: "POST", headers: tus(undefined, { "Upload-Length": "10" }) });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe("UNAUTHORIZED");

    const data = seeded(3000, 180);
    const created = await call("/uploads/files", { method: "POST", headers: tus("team-host", { "Upload-Length": String(data.length) }) });
    expect(created.status).toBe(201);
    const location = created.headers.get("location") ?? "";
    expect(location).toMatch(/^\/uploads\/files\/[0-9a-f]{64}$/);
    const id = location.split("/").pop() ?? "";
    failOnce.add(id);

    const done = await call(location, {
      method: "PATCH",
      headers: tus("team-host", { "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream" }),
      body: data,
    });
    expect(done.status).toBe(204);
    const digest = await sha256(data);
    expect(done.headers.get("content-location")).toBe(`/uploads/blobs/${digest}`);
    expect(done.headers.get("upload-blob-url")).toMatch(new RegExp(`^/uploads/blobs/${digest}\\?ns=team-host&`));
    expect((await call(location, { method: "HEAD", headers: tus("team-host") })).headers.get("upload-offset")).toBe(String(data.length));

    const blob = await call(done.headers.get("content-location") ?? "", { headers: { "x-user": "team-host" } });
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(data);
    expect((await call(done.headers.get("content-location") ?? "", { headers: { "x-user": "team-other" } })).status).toBe(404);
    const linked = await call(done.headers.get("upload-blob-url") ?? "");
    expect(new Uint8Array(await linked.arrayBuffer())).toEqual(data);

    // The hook threw on its first call; the object's alarm calls it again until it returns.
    for (let i = 0; i < 50 && (await recordOf(id))?.events?.pending.includes("hook"); i++) await runDurableObjectAlarm(stubOf(id));
    const mine = calls.filter((e) => e.id === id);
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(new Set(mine.map((e) => JSON.stringify(e))).size).toBe(1);
    expect(mine[0]).toMatchObject({ type: "upload.completed", id, namespace: "team-host", digest, size: data.length });
    expect((await recordOf(id))?.events?.pending ?? []).not.toContain("hook");
  });

  test("a second app with other Durable Object options in the same Worker is refused at startup", () => {
    expect(() => createUploadApp({ limits: { maxUploadSize: 1 } })).toThrow(/only one upload app/);
    // Options the object does not read (authorize, the UPLOADS name) may differ per mount.
    expect(() => createUploadApp({ authorize: () => "x" })).not.toThrow();
  });
});
