/**
 * Helpers for the page tests (test/browser/page-*.browser.test.ts):
 * - seeded bytes that Node and the page generate identically (one source string for both);
 * - a real drop of such a file on the page's drop zone (DataTransfer built in the page);
 * - Chromium started by hand, so the test knows its pid and can SIGKILL it (the engines layer's
 *   spawnChromium, test/support/browsers.ts, whose page-side `find` waitForState uses too);
 * - a counting, gateable reverse proxy in front of the stack, to MEASURE the PATCH bytes the
 *   browser sends (and hold them, so a kill lands mid-upload without timing guesses).
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { type IncomingMessage, type Server, createServer, request as httpRequest } from "node:http";
import { type AddressInfo, connect } from "node:net";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { findExpression, spawnChromium } from "../support/browsers.ts";

// ---------------------------------------------------------------------------------------------
// Vite's dev-server reloads

/**
 * Keeps Vite's HMR websocket from ever reaching the dev server: a file saved in this working
 * tree (others work in it while tests run) must not reload the page mid-upload. The page gets a
 * websocket that opens and stays silent.
 */
export async function muteViteReloads(context: BrowserContext): Promise<void> {
  await context.routeWebSocket(/.*/, () => {});
}

/**
 * A page in its own context (fresh storage), Vite reloads muted; closing the page closes the
 * context. When the browser closes first (afterAll), that second close rejects, which must not
 * surface as an unhandled error.
 */
export async function newIsolatedPage(browser: Browser, viewport = { width: 1000, height: 800 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  await muteViteReloads(context);
  const page = await context.newPage();
  page.on("close", () => void context.close().catch(() => undefined));
  return page;
}

// ---------------------------------------------------------------------------------------------
// Seeded bytes

/**
 * xorshift32 over 32-bit words; the same source runs in Node (new Function) and in the page
 * (page.evaluate), so the bytes cannot drift apart. Little-endian on both sides (x86/arm).
 */
const SEEDED_BYTES_BODY = `
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, size >>> 2);
  let x = (seed >>> 0) || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < size; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[i] = x & 255; }
  return out;
`;

export const seededBytes = new Function("seed", "size", SEEDED_BYTES_BODY) as (seed: number, size: number) => Uint8Array;

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export interface FileSpec {
  name: string;
  size: number;
  seed: number;
  /** Fixed, so the same file given again after a restart has the same fingerprint. */
  lastModified: number;
}

/**
 * Drops a seeded file on the drop zone: dragenter, dragover, drop with a page-built DataTransfer.
 * `beforeDrop` runs after the file is built (generating it is the test's main-thread work, not
 * the page's) and before the events are dispatched.
 */
export async function dropFile(page: Page, spec: FileSpec, beforeDrop?: () => Promise<void>): Promise<void> {
  const dataTransfer = await page.evaluateHandle(
    ({ body, spec }) => {
      const bytes = new Function("seed", "size", body)(spec.seed, spec.size) as Uint8Array<ArrayBuffer>;
      const file = new File([bytes], spec.name, { type: "application/octet-stream", lastModified: spec.lastModified });
      const dt = new DataTransfer();
      dt.items.add(file);
      return dt;
    },
    { body: SEEDED_BYTES_BODY, spec },
  );
  await beforeDrop?.();
  const zone = page.getByTestId("drop-zone");
  for (const type of ["dragenter", "dragover", "drop"]) await zone.dispatchEvent(type, { dataTransfer });
  await dataTransfer.dispose();
}

/**
 * Writes a seeded file into the page's origin private file system (OPFS) and leaves its
 * FileSystemFileHandle on `window.__opfsHandle`, for a stubbed showOpenFilePicker to hand out.
 */
export async function createOpfsFile(page: Page, spec: FileSpec): Promise<void> {
  await page.evaluate(
    async ({ body, spec }) => {
      const bytes = new Function("seed", "size", body)(spec.seed, spec.size) as Uint8Array<ArrayBuffer>;
      const root = await navigator.storage.getDirectory();
      const handle = await root.getFileHandle(spec.name, { create: true });
      const writable = await handle.createWritable();
      await writable.write(bytes);
      await writable.close();
      (window as unknown as { __opfsHandle: FileSystemFileHandle }).__opfsHandle = handle;
    },
    { body: SEEDED_BYTES_BODY, spec },
  );
}

// ---------------------------------------------------------------------------------------------
// Reading the test hooks

export interface RowHooks {
  name: string | null;
  size: string | null;
  state: string | null;
  hashed: string | null;
  uploaded: string | null;
  digest: string | null;
  resumedHashAt: string | null;
  resumedUploadAt: string | null;
  blob: string | null;
  uploadUrl: string | null;
}

export async function rowHooks(page: Page, name: string): Promise<RowHooks> {
  return page.locator(`[data-testid=upload][data-name="${name}"]`).evaluate((el) => ({
    name: el.getAttribute("data-name"),
    size: el.getAttribute("data-size"),
    state: el.getAttribute("data-state"),
    hashed: el.getAttribute("data-hashed"),
    uploaded: el.getAttribute("data-uploaded"),
    digest: el.getAttribute("data-digest"),
    resumedHashAt: el.getAttribute("data-resumed-hash-at"),
    resumedUploadAt: el.getAttribute("data-resumed-upload-at"),
    blob: el.getAttribute("data-blob"),
    uploadUrl: el.getAttribute("data-upload-url"),
  }));
}

/** Waits until the row's data-state is one of `states` (the browser polls; no fixed sleeps). */
export async function waitForState(page: Page, name: string, states: string[], timeout = 120_000): Promise<void> {
  // The row is found as the engines layer finds it: in the document or any open shadow root.
  const row = findExpression(`[data-testid=upload][data-name=${JSON.stringify(name)}]`);
  await page.waitForFunction(`${JSON.stringify(states)}.includes(${row}?.getAttribute("data-state") ?? "")`, undefined, { timeout, polling: 100 });
}

// ---------------------------------------------------------------------------------------------
// A Chromium whose pid we know

export interface KillableBrowser {
  browser: Browser;
  context: BrowserContext;
  pid: number;
  /** SIGKILL to the whole process group: the browser and its renderers die at once, like a crash. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/** Chromium on a persistent profile, over CDP (test/support/browsers.ts spawnChromium, which the engines layer uses too). */
export async function launchKillable(profileDir: string, viewport = { width: 1000, height: 800 }): Promise<KillableBrowser> {
  const { browser, context, pid, exited } = await spawnChromium(profileDir, viewport);
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    browser,
    context,
    pid,
    async kill() {
      process.kill(-pid, "SIGKILL");
      await exited;
    },
    async close() {
      await browser.close().catch(() => {});
      if (!gone) {
        try {
          process.kill(-pid, "SIGTERM");
        } catch {
          // exited between the check and the signal
        }
        await exited;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The counting, gateable proxy

export interface PatchRecord {
  url: string;
  /** Upload-Offset the client sent. */
  offset: number;
  /** Body bytes the browser sent in this request (all reached the edge unless the gate held them). */
  bytes: number;
  status?: number;
}

export interface CountingProxy {
  url: string;
  patches: PatchRecord[];
  /** PATCH body bytes the browser sent (read by the proxy, whether or not the gate let them on). */
  readonly patchBytes: number;
  /** Body bytes let through to the edge, in total, across all PATCHes; Infinity = no limit. */
  setGate(bytes: number): void;
  /** Resolves once `bytes` PATCH body bytes were forwarded in total; rejects after `timeout` ms. */
  waitForForwarded(bytes: number, timeout?: number): Promise<void>;
  readonly forwarded: number;
  /** Resolves once no PATCH is open between the browser and the edge (all answered or cut off). */
  waitForNoOpenPatch(timeout?: number): Promise<void>;
  close(): Promise<void>;
}

/** A reverse proxy in front of `target` (page, API and Vite's websocket), same origin for the page. */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const patches: PatchRecord[] = [];
  let gate = Number.POSITIVE_INFINITY;
  let forwarded = 0;
  let patchBytes = 0;
  const pumps = new Set<() => void>();
  let openPatches = 0;
  const idleWaiters: (() => void)[] = [];
  const waiters: { bytes: number; resolve(): void }[] = [];

  function notify(): void {
    for (const w of waiters.splice(0)) {
      if (forwarded >= w.bytes) w.resolve();
      else waiters.push(w);
    }
  }

  const server: Server = createServer((req: IncomingMessage, res) => {
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      if (record) record.status = up.statusCode;
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on("error", () => res.destroy());
    const record: PatchRecord | undefined = req.method === "PATCH" ? { url: req.url ?? "", offset: Number(req.headers["upload-offset"]), bytes: 0 } : undefined;
    if (!record) {
      req.pipe(out);
      return;
    }
    patches.push(record);
    openPatches++;
    let counted = true;
    const closed = () => {
      if (!counted) return;
      counted = false;
      openPatches--;
      if (openPatches === 0) for (const wake of idleWaiters.splice(0)) wake();
    };
    res.on("close", closed);
    // PATCH bodies go through a queue that never lets more than `gate` bytes (in total) through
    // to the edge. The browser's side is read on regardless (held bytes wait in memory, at most
    // one chunk), so an aborted request or a killed browser is seen at once, as on a real network.
    const queue: Buffer[] = [];
    let ended = false;
    const pump = () => {
      while (queue.length > 0 && forwarded < gate) {
        const head = queue[0] as Buffer;
        const n = Math.min(head.length, gate - forwarded);
        out.write(n === head.length ? head : head.subarray(0, n));
        forwarded += n;
        if (n === head.length) queue.shift();
        else queue[0] = head.subarray(n);
      }
      notify();
      if (queue.length === 0 && ended) {
        pumps.delete(pump);
        out.end();
      }
    };
    pumps.add(pump);
    req.on("data", (chunk: Buffer) => {
      record.bytes += chunk.length;
      patchBytes += chunk.length;
      queue.push(chunk);
      pump();
    });
    req.on("end", () => {
      ended = true;
      pump();
    });
    // The browser went away (killed, or it aborted the request) before the edge got the whole
    // body: drop what the gate still holds and cut the edge's request off there, as a crash
    // looks to a server behind a streaming proxy. (req "close" is no signal: it fires after
    // every complete body; the response closing unfinished is.)
    res.on("close", () => {
      if (res.writableFinished || (ended && queue.length === 0)) return;
      queue.length = 0;
      pumps.delete(pump);
      out.destroy();
    });
  });
  // Vite's HMR websocket, passed through untouched.
  server.on("upgrade", (req: IncomingMessage, socket, head) => {
    const up = connect(Number(upstream.port), upstream.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    patches,
    get patchBytes() {
      return patchBytes;
    },
    get forwarded() {
      return forwarded;
    },
    setGate(bytes: number) {
      gate = bytes;
      for (const pump of [...pumps]) pump();
    },
    waitForForwarded(bytes: number, timeout = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`proxy: ${forwarded} PATCH bytes forwarded, waited for ${bytes} (${patches.length} PATCHes)`)),
          timeout,
        );
        waiters.push({ bytes, resolve: () => (clearTimeout(timer), resolve()) });
        notify();
      });
    },
    waitForNoOpenPatch(timeout = 30_000) {
      if (openPatches === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`proxy: ${openPatches} PATCH still open`)), timeout);
        idleWaiters.push(() => (clearTimeout(timer), resolve()));
      });
    },
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
