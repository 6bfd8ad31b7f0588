/**
 * The server SIGKILLed while uploads run, as a crashed host or a redeploy would: four uploads of
 * 24-40 MiB (two through tus-js-client, two through our Node client; the digest declared at
 * creation for one of each, on the last PATCH or never for the others) against a server of this
 * test's own (test/support/server-process.ts). The whole server process group is killed at seeded
 * points of the run's progress and once right after the last bytes of an upload went out (its
 * finish), then started again on the same port and state.
 *
 * Invariants (issue 14): every upload ends with HEAD answering Upload-Offset = Upload-Length with
 * Content-Location and Repr-Digest, and its blob served with exactly its bytes; no upload is
 * answered 404/410 once created (a client would start it again from 0); whenever a client is
 * told complete, the blob is already served.
 *
 * EDGE_UPLOAD_KILL_SEED=<n> picks other kill points (the seed is printed).
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tus from "tus-js-client";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { createNodeUploader, fileFromPath } from "../../client/node.ts";
import type { Uploader, UploadSnapshot } from "../../client/node.ts";
import { seededBytes } from "../support/seeded.ts";
import { type ServerProcess, startServer } from "../support/server-process.ts";

const MiB = 1024 * 1024;
const SEED = Number(process.env.EDGE_UPLOAD_KILL_SEED ?? 16);

let dir = "";
let server: ServerProcess;
/** Kill-and-restart cycles; a failing test waits for them before stopping the server. */
const restarts: Promise<void>[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-upload-kill-"));
  // The e2e stack's build (built here when the stack is a server started elsewhere), served by a
  // server of our own: its own port and state, nothing shared with the other tests but the build.
  const build = join(inject("stateDir"), "build");
  server = await startServer({ stateDir: join(dir, "server"), outDir: build, build: !existsSync(build) });
});
afterAll(async () => {
  await Promise.allSettled(restarts);
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** xorshift32, for kill points that are the same on every run of one seed. */
function random(seed: number): () => number {
  // Spread small seeds over the state first: xorshift from a small state starts with small values.
  let x = Math.imul(seed, 2654435761) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  for (let i = 0; i < 8; i++) next();
  return next;
}

interface File {
  name: string;
  bytes: Buffer;
  hex: string;
}

function file(name: string, size: number, seed: number): File {
  const raw = seededBytes(size, seed);
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  return { name, bytes, hex: createHash("sha256").update(bytes).digest("hex") };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A request read to its end that waits out the server's absence (killed, restarting) instead of
 * failing: the kills go on while the test checks blobs.
 */
async function fetchThrough(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: Buffer }> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url, init);
      return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
    } catch (err) {
      if (i > 600) throw err;
      await sleep(100);
    }
  }
}

test("SIGKILLs mid-PATCH and mid-finish: every upload finishes verified, none forgotten, none done before its blob", async () => {
  const files = {
    tusDeclared: file("tus-declared.bin", 40 * MiB + 5, 1401),
    tusPlain: file("tus-plain.bin", 32 * MiB + 1, 1402),
    nodeFirst: file("node-hash-first.bin", 28 * MiB + 7, 1403),
    nodeAlongside: file("node-alongside.bin", 24 * MiB + 3, 1404),
  };
  const total = Object.values(files).reduce((n, f) => n + f.bytes.length, 0);
  const violations: string[] = [];
  const sent = new Map<string, number>();
  const urls = new Map<string, string>();
  const log: string[] = [];
  const lastPatchAt = new Map<string, number>();

  // ---- the killer: one kill at a time, each followed by a restart on the same port and state.
  const rand = random(SEED);
  const progressKills = [0.15 + 0.2 * rand(), 0.4 + 0.2 * rand()].sort((a, b) => a - b);
  const kills: string[] = [];
  let down = false;
  const kill = (reason: string) => {
    if (down) return void log.push(`no kill (${reason}): the server is down already`);
    down = true;
    kills.push(reason);
    const at = Date.now();
    log.push(`kill: ${reason}`);
    restarts.push(
      (async () => {
        try {
          await server.kill("SIGKILL");
          await server.restart();
          log.push(`back after ${Date.now() - at} ms`);
        } finally {
          down = false;
        }
      })(),
    );
  };
  const finishKills = new Set<string>();
  // A tus upload's finish kill is waiting for its moment: other kills hold off, or the server
  // would be down already when that moment comes.
  let finishKillsDue = 0;
  const progressed = (name: string, bytes: number, size: number, finishAt: number | undefined) => {
    sent.set(name, bytes);
    if (finishKillsDue > 0) return;
    const all = [...sent.values()].reduce((a, b) => a + b, 0);
    const next = progressKills[0];
    if (next !== undefined && all >= next * total && !down) kill(`${Math.round(next * 100)}% of all bytes sent`), progressKills.shift();
    // Our client's progress comes in steps: near the end it is in its last PATCH.
    if (finishAt !== undefined && bytes >= finishAt && bytes <= size && !finishKills.has(name) && !down) {
      finishKills.add(name);
      kill(`${name} in its last ${Math.round((size - finishAt) / MiB)} MiB`);
    }
  };

  /** A client said "complete": its blob must be served with its bytes now (or once the server is back). */
  const toldComplete = async (f: File, by: string) => {
    const res = await fetchThrough(`${server.baseUrl}/blobs/sha256:${f.hex}`);
    if (res.status !== 200) violations.push(`${f.name}: ${by} reported complete but GET of its blob answered ${res.status}`);
    else if (!res.body.equals(f.bytes)) violations.push(`${f.name}: ${by} reported complete but its blob has other bytes`);
  };

  const viaTus = (f: File, declareDigest: boolean, finishDelay: [number, number]) => {
    const delay = Math.round(finishDelay[0] + (finishDelay[1] - finishDelay[0]) * rand());
    return new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(f.bytes, {
        endpoint: `${server.baseUrl}/files`,
        chunkSize: 8 * MiB,
        metadata: { filename: f.name, filetype: "application/octet-stream", ...(declareDigest ? { digest: `sha256:${f.hex}` } : {}) },
        // Many short waits: a restart takes seconds, and the count starts again on progress.
        retryDelays: Array.from({ length: 600 }, () => 200),
        onAfterResponse(req, res) {
          const status = res.getStatus();
          if (req.getMethod() === "POST" && status === 201) urls.set(f.name, new URL(res.getHeader("Location") ?? "", server.baseUrl).href);
          else if ((status === 404 || status === 410) && req.getURL() === urls.get(f.name)) {
            violations.push(`${f.name}: ${req.getMethod()} of the created upload answered ${status}`);
          }
        },
        onChunkComplete(_chunk, accepted, size) {
          // The next PATCH is the last one (a few bytes here): its request runs the finish, which
          // took 0.3-1.5 s here (a move of the whole upload when no digest was declared). The
          // kill lands a seeded moment into it.
          if (size - accepted < 8 * MiB && accepted < size && !finishKills.has(f.name)) {
            finishKills.add(f.name);
            lastPatchAt.set(f.name, Date.now());
            finishKillsDue++;
            setTimeout(() => {
              finishKillsDue--;
              kill(`${f.name}: ${delay} ms into its last PATCH`);
            }, delay);
          }
        },
        onProgress(bytes, size) {
          progressed(f.name, bytes, size, undefined);
        },
        onSuccess() {
          log.push(`${f.name}: complete ${Date.now() - (lastPatchAt.get(f.name) ?? 0)} ms after its last PATCH started`);
          void toldComplete(f, "tus-js-client").then(resolve, reject);
        },
        onError: reject,
      });
      upload.start();
    });
  };

  const viaNode = async (uploader: Uploader, f: File, killNearEnd: boolean) => {
    const path = join(dir, f.name);
    await writeFile(path, f.bytes);
    const [added] = await uploader.add([await fileFromPath(path)]);
    if (!added) throw new Error(`${f.name} not added`);
    const done = await new Promise<UploadSnapshot>((resolve, reject) => {
      const timer = setInterval(() => {
        const u = uploader.list().find((x) => x.key === added.key);
        if (!u) return;
        if (u.uploadUrl) {
          const first = urls.get(f.name);
          if (first === undefined) urls.set(f.name, u.uploadUrl);
          else if (first !== u.uploadUrl) violations.push(`${f.name}: the upload was started again at ${u.uploadUrl}`);
        }
        if (u.notice?.code === "UPLOAD_GONE") violations.push(`${f.name}: ${u.notice.message}`);
        progressed(f.name, u.transfer.bytes, f.bytes.length, killNearEnd ? f.bytes.length - 2 * MiB : undefined);
        if (u.state.kind === "done" || u.state.kind === "failed") {
          clearInterval(timer);
          if (u.state.kind === "failed") reject(new Error(`${f.name}: ${JSON.stringify(u.state.error)}`));
          else resolve(u);
        }
      }, 20);
    });
    expect(done.state).toMatchObject({ kind: "done", digest: `sha256:${f.hex}` });
    await toldComplete(f, "the Node client");
  };

  const started = Date.now();
  const uploader = (hashFirst: boolean, name: string) =>
    createNodeUploader({
      endpoint: `${server.baseUrl}/files`,
      stateDir: join(dir, `client-${name}`),
      chunkSize: 8 * MiB,
      hashFirst,
      retry: { maxAttempts: 600, baseDelayMs: 100, maxDelayMs: 400 },
    });
  const first = uploader(true, "first");
  const alongside = uploader(false, "alongside");
  try {
    await Promise.all([
      viaTus(files.tusDeclared, true, [20, 200]),
      viaTus(files.tusPlain, false, [50, 600]),
      viaNode(first, files.nodeFirst, false),
      viaNode(alongside, files.nodeAlongside, true),
    ]);
  } finally {
    first.destroy();
    alongside.destroy();
  }
  await Promise.all(restarts);
  console.log(`server-kill seed ${SEED}: ${kills.length} kills in ${Date.now() - started} ms\n  ${log.join("\n  ")}`);
  expect(violations).toEqual([]);

  for (const f of Object.values(files)) {
    const url = urls.get(f.name) ?? "";
    const head = await fetchThrough(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
    const raw = createHash("sha256").update(f.bytes).digest("base64");
    expect(
      {
        status: head.status,
        offset: head.headers.get("upload-offset"),
        length: head.headers.get("upload-length"),
        location: head.headers.get("content-location"),
        digest: head.headers.get("repr-digest"),
      },
      `HEAD ${f.name}`,
    ).toEqual({ status: 200, offset: String(f.bytes.length), length: String(f.bytes.length), location: `/blobs/sha256:${f.hex}`, digest: `sha-256=:${raw}:` });
    const blob = (await fetchThrough(`${server.baseUrl}/blobs/sha256:${f.hex}`)).body;
    expect(createHash("sha256").update(blob).digest("hex"), `blob of ${f.name}`).toBe(f.hex);
    expect(blob.equals(f.bytes)).toBe(true);
  }
  // The uploads' Durable Objects persist where `vite dev` and `wrangler dev` keep them too
  // (<worker name>-<class>), so `npm start` continues what those stored.
  expect(existsSync(join(dir, "server", "v3", "do", "edge-upload-UploadObject"))).toBe(true);
  expect(kills.length).toBeGreaterThanOrEqual(3);
});
