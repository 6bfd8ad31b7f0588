/**
 * Exposes the client library to the browser tests as `window.harness`: the worker hasher on
 * in-page generated data, and an uploader whose files are generated in the page (seeded, so a
 * reopened page can give "the same file" again) or written to OPFS (a handle that survives).
 */
import { createUploader, type Uploader, type UploaderEvent, type UploaderOptions, type UploadSnapshot } from "../../client/index.ts";
import { createWorkerHasher } from "../../client/hashing/worker-hasher.ts";
import type { CopyPace } from "../../client/staging/copier.ts";
import { removeCopy, stageDirectory } from "../../client/staging/opfs.ts";
import { seededBytes } from "../support/seeded.ts";

const LAST_MODIFIED = 1_700_000_000_000;

function generated(name: string, size: number, seed: number): File {
  return new File([seededBytes(size, seed)], name, { type: "application/octet-stream", lastModified: LAST_MODIFIED });
}

let uploader: Uploader | undefined;
const events: UploaderEvent[] = [];

const harness = {
  /**
   * Hashes seeded bytes in the worker; `pauseAt` pauses once that many bytes are hashed; `stage`
   * also copies the file into OPFS (the copier is ended with the pause, as the uploader's is).
   * `storedAt` is the offset of the checkpoint stored when the result came (peeked at once).
   */
  async hash(size: number, seed: number, opts: { key: string; interval?: number; pauseAt?: number; stage?: boolean }) {
    const file = new Blob([seededBytes(size, seed)]);
    const hasher = createWorkerHasher({ stage: opts.stage === true });
    let run: ReturnType<typeof hasher.start> | undefined;
    let paused = false;
    run = hasher.start({
      key: opts.key,
      file,
      stage: opts.stage === true,
      checkpointInterval: opts.interval,
      onProgress: (offset) => {
        if (opts.pauseAt !== undefined && offset >= opts.pauseAt && !paused) {
          paused = true;
          run?.pause();
        }
      },
    });
    const result = await run.result;
    const storedAt = (await hasher.peek(opts.key, size))?.offset;
    if (opts.stage) await removeCopy(opts.key);
    return { ...result, storedAt };
  },
  /**
   * Hashes seeded bytes with the copy kept in OPFS at `pace` (issue 18), at `rate` bytes/s at most
   * (so a slow engine's copy keeps up); resolves once the copy has ended, with what happened in
   * order, the copy's own SHA-256, and the copy removed.
   */
  async hashStaged(size: number, seed: number, opts: { key: string; pace: CopyPace; rate?: number }) {
    const file = new Blob([seededBytes(size, seed)]);
    const hasher = createWorkerHasher({ stage: true });
    const happened: string[] = [];
    let readAgain: number | undefined;
    let copyEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => (copyEnded = resolve));
    const result = await hasher.start({
      key: opts.key,
      file,
      stage: true,
      copyPace: opts.pace,
      ...(opts.rate ? { rate: opts.rate } : {}),
      onStage: (e) => {
        happened.push(e.kind === "stopped" ? `stopped:${e.why}` : e.kind);
        if (e.kind === "whole") readAgain = e.spent?.readAgain;
        if (e.kind !== "written") copyEnded();
      },
    }).result;
    happened.push("hashed");
    await ended;
    const dir = await stageDirectory(false);
    const copy = await (await dir!.getFileHandle(opts.key)).getFile();
    const copyDigest = `sha256:${[...new Uint8Array(await crypto.subtle.digest("SHA-256", await copy.arrayBuffer()))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    await hasher.forget(opts.key);
    await removeCopy(opts.key);
    return { result, happened, readAgain, copyDigest, copySize: copy.size };
  },
  async forgetHash(key: string) {
    await createWorkerHasher().forget(key);
  },
  create(options: Omit<UploaderOptions, "endpoint">) {
    uploader?.destroy();
    uploader = createUploader({ endpoint: "/files", ...options });
    uploader.on((e) => events.push(e));
    return true;
  },
  async addGenerated(name: string, size: number, seed: number): Promise<UploadSnapshot[]> {
    return need().add([generated(name, size, seed)]);
  },
  /** Writes the seeded file to OPFS (once) and adds its handle: resumable without picking. */
  async addOpfs(name: string, size: number, seed: number): Promise<UploadSnapshot[]> {
    const root = await navigator.storage.getDirectory();
    const handle = await root.getFileHandle(name, { create: true });
    if ((await handle.getFile()).size !== size) {
      const w = await handle.createWritable();
      await w.write(seededBytes(size, seed));
      await w.close();
    }
    return need().add([handle]);
  },
  restore: () => need().restore(),
  list: () => need().list(),
  get: (key: string) =>
    need()
      .list()
      .find((u) => u.key === key),
  pause: (key: string) => need().pause(key),
  resume: (key: string) => need().resume(key),
  cancel: (key: string) => need().cancel(key),
  errors: () => events.flatMap((e) => (e.type === "error" ? [{ key: e.upload.key, code: e.error.code, message: e.error.message }] : [])),
  states: (key: string) => events.flatMap((e) => (e.upload.key === key ? [e.upload.state.kind] : [])),
};

function need(): Uploader {
  if (!uploader) throw new Error("call harness.create() first");
  return uploader;
}

(globalThis as unknown as { harness: typeof harness }).harness = harness;
export type Harness = typeof harness;
