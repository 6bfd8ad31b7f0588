/**
 * The page's contract (its data-testid hooks, docs/page.md) in every engine: Chromium, Firefox
 * ESR and WebKitGTK, each driven through test/support/browsers.ts. Per engine: a file chosen in
 * the file input ends done with the right digest, and a browser SIGKILLed mid-hash and
 * mid-upload, relaunched on its profile, finishes the same upload without starting over.
 *
 * A file of its own rather than an engine parameter on page-upload / page-crash: those use what
 * only Chromium and Playwright have (a script-built DataTransfer dropped on the zone, the File
 * System Access picker stubbed with OPFS handles, long-task timing, screenshots); this file keeps
 * to what a person does in any browser (choose a file in the input) and what every driver can
 * do, so one test body runs in all three.
 *
 * Files come from disk (as a person's do) and go through the file input: Firefox and WebKit have
 * no showOpenFilePicker, so after a crash mid-hash the interrupted row asks for the same file
 * again, unless the copy the page keeps in OPFS (issue 18) was already whole, in which case the
 * row continues from it; both are accepted here. engines-staging.browser.test.ts is the test of
 * continuing from that copy in every engine.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { ENGINES, type Engine, type EngineBrowser, launch } from "../support/browsers.ts";
import { type CountingProxy, type RowHooks, seededBytes, sha256Digest, startCountingProxy } from "./page-helpers.ts";

const MiB = 1024 * 1024;
const FILE_INPUT = "[data-testid=file-input]";
/** The library's default hasher checkpoint interval. */
const CHECKPOINT = 16 * MiB;
/**
 * The crash: hash and send side by side, hashing held to 8 MiB/s (6 s for the 48 MiB file) so
 * the kill lands mid-hash; the upload is held by the proxy's gate, so it lands mid-upload.
 */
const CRASH_QUERY = "?chunk=8MiB&hashFirst=false&hashRate=8MiB";
const GATE = 20 * MiB + 123_456; // inside the third chunk, not on a part boundary

interface DiskFile {
  name: string;
  path: string;
  size: number;
  digest: string;
}

let dir = "";
let proxy: CountingProxy;

async function diskFile(name: string, size: number, seed: number): Promise<DiskFile> {
  const bytes = seededBytes(seed, size);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { name, path, size, digest: sha256Digest(bytes) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "engines-"));
  proxy = await startCountingProxy(inject("baseUrl"));
});
afterAll(async () => {
  await proxy?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The row's hooks page-helpers reads in Chromium, and how many rows carry the name. */
type Hooks = Pick<RowHooks, "state" | "size" | "hashed" | "uploaded" | "digest" | "resumedHashAt" | "resumedUploadAt" | "blob"> & { rows: number };

function rowSelector(name: string): string {
  return `[data-testid=upload][data-name="${name}"]`;
}

/** The row's hooks, read in one round trip (null fields when there is no such row). */
function hooks(browser: EngineBrowser, name: string): Promise<Hooks> {
  return browser.evaluate(
    ({ selector }, find) => {
      const el = find(selector);
      const attr = (n: string) => el?.getAttribute(n) ?? null;
      const host = find("[data-testid=drop-zone]")?.getRootNode() as Document | ShadowRoot | undefined;
      return {
        state: attr("data-state"),
        size: attr("data-size"),
        hashed: attr("data-hashed"),
        uploaded: attr("data-uploaded"),
        digest: attr("data-digest"),
        resumedHashAt: attr("data-resumed-hash-at"),
        resumedUploadAt: attr("data-resumed-upload-at"),
        blob: attr("data-blob"),
        rows: host?.querySelectorAll("[data-testid=upload]").length ?? 0,
      };
    },
    { selector: rowSelector(name) },
  );
}

function waitForState(browser: EngineBrowser, name: string, states: string[]): Promise<void> {
  return browser.waitFor(({ selector, states }, find) => states.includes(find(selector)?.getAttribute("data-state") ?? ""), {
    selector: rowSelector(name),
    states,
  });
}

/** Opens the page and waits for its drop zone (the page has run its script). */
async function openPage(browser: EngineBrowser, query = ""): Promise<void> {
  await browser.open(`${proxy.url}/${query}`);
  await browser.waitFor((selector, find) => find(selector) !== null, "[data-testid=drop-zone]", 30_000);
}

/** The blob the edge serves for a done row, fetched past the proxy: its digest. */
async function servedDigest(blob: string | null): Promise<string> {
  const res = await fetch(new URL(new URL(blob ?? "", proxy.url).pathname, inject("baseUrl")));
  expect(res.status).toBe(200);
  return sha256Digest(new Uint8Array(await res.arrayBuffer()));
}

/** One engine's state across its two tests. */
interface EngineRun {
  engine: Engine;
  profile: string;
  /** One launch serves both tests (a launch costs seconds, Firefox's most); the crash test relaunches it. */
  browser?: EngineBrowser;
  small: DiskFile;
  large: DiskFile;
}

async function current(run: EngineRun): Promise<EngineBrowser> {
  run.browser ??= await launch(run.engine, { profileDir: run.profile });
  return run.browser;
}

interface Killed {
  /** Dead, kept for its relaunch() on the same profile. */
  browser: EngineBrowser;
  atKill: Hooks;
  midHash: boolean;
  /** PATCH body bytes that reached the edge before the kill. */
  reachedEdge: number;
  sentSession1: number;
}

/** Session 1: the large file chosen, the browser SIGKILLed once the gate holds the upload and a checkpoint is past. */
async function uploadAndKill(run: EngineRun): Promise<Killed> {
  const { large } = run;
  const browser = await current(run);
  await openPage(browser, CRASH_QUERY);
  const sentBefore = proxy.patchBytes;
  const forwardedBefore = proxy.forwarded;
  proxy.setGate(forwardedBefore + GATE);
  await browser.setFiles(FILE_INPUT, [large.path]);
  await proxy.waitForForwarded(forwardedBefore + GATE);
  // Past the first checkpoint, with time to store it.
  await browser.waitFor(({ selector, at }, find) => Number(find(selector)?.getAttribute("data-hashed")) >= at, {
    selector: rowSelector(large.name),
    at: CHECKPOINT + 4 * MiB,
  });
  const atKill = await hooks(browser, large.name);
  await browser.killHard();
  run.browser = undefined;
  const reachedEdge = proxy.forwarded - forwardedBefore;
  // Mid-upload for certain: the gate held the rest. Mid-hash as a rule (hashing is held to
  // 8 MiB/s), but on a loaded machine the upload may take longer than the whole hash: then the
  // row is uploading, and the relaunch has nothing to re-hash.
  expect(reachedEdge).toBe(GATE);
  expect(Number(atKill.uploaded)).toBeLessThan(large.size);
  const midHash = Number(atKill.hashed) < large.size;
  expect(atKill).toMatchObject(midHash ? { state: "hashing", digest: null } : { state: "uploading" });
  await proxy.waitForNoOpenPatch();
  return { browser, atKill, midHash, reachedEdge, sentSession1: proxy.patchBytes - sentBefore };
}

/** Session 2: the same profile; the row continues (given the same file again when it asks for it) and ends done. */
async function relaunchAndFinish(run: EngineRun, killed: Killed): Promise<void> {
  const { large } = run;
  const sentBefore = proxy.patchBytes; // before the relaunch: a row that continues by itself sends at once
  proxy.setGate(Number.POSITIVE_INFINITY);
  const browser = await killed.browser.relaunch();
  run.browser = browser;
  await openPage(browser, CRASH_QUERY);
  await waitForState(browser, large.name, ["interrupted", "hashing", "uploading", "done"]);
  const after = await hooks(browser, large.name);
  // Without a kept copy of the file the row waits for it: the same file, in the same input.
  if (after.state === "interrupted") await browser.setFiles(FILE_INPUT, [large.path]);
  await waitForState(browser, large.name, ["done", "failed"]);
  const done = await hooks(browser, large.name);
  const sentSession2 = proxy.patchBytes - sentBefore;

  expect(done).toMatchObject({ state: "done", digest: large.digest, rows: 1 }); // continued its row, no second one
  // The upload went on from what the edge had committed, all of which it had received, and
  // the browser sent only the rest.
  const resumedUploadAt = Number(done.resumedUploadAt);
  expect(resumedUploadAt).toBeGreaterThan(0);
  expect(resumedUploadAt).toBeLessThanOrEqual(killed.reachedEdge);
  expect(sentSession2).toBe(large.size - resumedUploadAt);
  // Hashing went on from a stored checkpoint, at most one interval behind the kill (the hash
  // job's promise, client/hashing/job.ts; the row showed hashedAtKill a moment before the
  // kill, so hashing was at least there and a later checkpoint may have been stored).
  const hashedAtKill = Number(killed.atKill.hashed);
  const resumedHashAt = Number(done.resumedHashAt);
  if (killed.midHash) {
    expect(resumedHashAt).toBeGreaterThan(0);
    expect(resumedHashAt).toBeGreaterThanOrEqual(hashedAtKill - CHECKPOINT);
  }
  expect(await servedDigest(done.blob)).toBe(large.digest);
  const { midHash, reachedEdge, sentSession1 } = killed;
  const facts = { midHash, stateAfterRelaunch: after.state, hashedAtKill, resumedHashAt, sentSession1, reachedEdge, resumedUploadAt, sentSession2 };
  console.log(JSON.stringify({ engine: run.engine, version: browser.version, ...facts }));
}

describe.each(ENGINES)("%s", (engine) => {
  // Bytes of this engine's own: the edge dedupes by digest, so a file another engine uploaded
  // already would finish early and prove nothing.
  const seed = ENGINES.indexOf(engine) + 1;
  let run: EngineRun;

  beforeAll(async () => {
    run = {
      engine,
      profile: await mkdtemp(join(tmpdir(), `engines-${engine}-`)),
      small: await diskFile(`${engine}-16mib.bin`, 16 * MiB, 160 + seed),
      large: await diskFile(`${engine}-crash-48mib.bin`, 48 * MiB, 480 + seed),
    };
  });
  afterAll(async () => {
    await run?.browser?.close();
    if (run) await rm(run.profile, { recursive: true, force: true });
  });

  test("a 16 MiB file chosen in the file input ends done with the digest node:crypto computes, and its blob serves it", async () => {
    const { small } = run;
    const browser = await current(run);
    await openPage(browser);
    await browser.setFiles(FILE_INPUT, [small.path]);
    await waitForState(browser, small.name, ["done", "failed"]);
    const done = await hooks(browser, small.name);
    const size = String(small.size);
    expect(done).toMatchObject({ state: "done", size, hashed: size, uploaded: size, digest: small.digest, rows: 1 });
    expect(done.resumedHashAt).toBeNull(); // a fresh upload
    expect(done.resumedUploadAt).toBeNull();
    expect(await servedDigest(done.blob)).toBe(small.digest);
  });

  test("SIGKILLed mid-upload (and mid-hash unless hashing won the race), relaunched on its profile: the same file given again resumes and ends done", async () => {
    const killed = await uploadAndKill(run);
    await relaunchAndFinish(run, killed);
  });
});
