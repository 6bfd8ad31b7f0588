/**
 * One upload: a hash process and a transfer process for one file, their state as an explicit
 * phase, and what is persisted so another session continues it. The uploader (uploader.ts)
 * owns the list; this file owns one row, and upload-run.ts what its running phase does.
 *
 *   interrupted ──resume/add──▶ (busy: other tab) ──▶ (queued) ──▶ running ──▶ done
 *        ▲                                                   │  ▲      └──▶ failed
 *        └──────── reload ◀── paused ◀──pause────────────────┘  └──resume──┘
 *   any phase ──cancel──▶ cancelled
 *
 * The working phases (busy, queued, running) own what they hold: the Web Lock, the stop signal
 * and the hash and transfer runs (their Work), so ending a phase is what releases them; a paused
 * upload keeps only its lock. "running" shows as `hashing` until the digest is known and as
 * `uploading` after. The digest and the upload URL live in the record only (persist/records.ts).
 */
import type { Sha256Digest } from "../shared/digest.ts";
import type * as tus from "tus-js-client";
import type { Locks, Release, Slots } from "./coordination.ts";
import * as errors from "./errors.ts";
import { fingerprint } from "./fingerprint.ts";
import type { Hasher } from "./hashing/hasher.ts";
import { keepRecord, type RecordKeeper, type UploadRecord, type UploadStore } from "./persist/records.ts";
import { createMeter } from "./progress.ts";
import type { RetryPolicy } from "./retry.ts";
import type { Staging } from "./staging/staging.ts";
import type { EdgeLimits } from "./tus/edge-limits.ts";
import { deleteUpload, type TokenSource } from "./tus/requests.ts";
import type { StagedState, UploadError, UploadSnapshot, UploadState } from "./types.ts";
import { type RunScope, runUpload, type SessionView, Stopped, type Work } from "./upload-run.ts";

export interface UploadContext {
  store: UploadStore;
  hasher: Hasher;
  /** Absolute tus endpoint. */
  endpoint: string;
  limits(): Promise<EdgeLimits>;
  token?: TokenSource;
  chunkSize?: number;
  retry: RetryPolicy;
  checkpointInterval?: number;
  hashFirst: boolean | number;
  limitRate?: { hash?: number; transfer?: number };
  toBody?: (file: Blob, start: number, end: number) => Promise<unknown>;
  /** Copies kept in this browser (staging/), "off" when the integrator turned them off, absent in Node. */
  staging?: Staging | "off";
  locks: Locks;
  slots: Slots;
  /** A state change (urgent: emit now) or progress (emitted by the uploader's ticker). */
  changed(upload: UploadController, urgent: boolean): void;
  failed(upload: UploadController, error: UploadError): void;
}

type InterruptReason = "reload" | "needs-file" | "needs-permission";

type Phase =
  | { kind: "new" } // created, not started yet: shows as queued
  | { kind: "interrupted"; reason: InterruptReason }
  | { kind: "busy"; work: Work }
  | { kind: "queued"; work: Work }
  | { kind: "running"; work: Work }
  | { kind: "paused"; lock: Release | undefined }
  | { kind: "done"; digest: Sha256Digest; blobUrl: string }
  | { kind: "failed"; error: UploadError }
  | { kind: "cancelled" };

type WorkingPhase = Extract<Phase, { work: Work }>;

const isWorking = (phase: Phase): phase is WorkingPhase => "work" in phase;

export interface UploadController {
  readonly key: string;
  readonly name: string;
  snapshot(): UploadSnapshot;
  phase(): Phase["kind"];
  /** True while it works or waits for work (running, queued or busy). */
  active(): boolean;
  /** Continue or start with this file (the caller checked its fingerprint). */
  start(file: Blob, handle?: FileSystemFileHandle): Promise<void>;
  pause(): Promise<void>;
  /** From a click: may ask for the kept handle's permission. */
  resume(): Promise<void>;
  cancel(): Promise<void>;
  dispose(): void;
}

/** File System Access methods that TypeScript's DOM lib does not declare yet. */
interface PermissionHandle {
  queryPermission?(d: { mode: "read" }): Promise<PermissionState>;
  requestPermission?(d: { mode: "read" }): Promise<PermissionState>;
}

export async function handlePermission(handle: FileSystemFileHandle, ask: boolean): Promise<PermissionState> {
  const h = handle as unknown as PermissionHandle;
  const fn = ask ? h.requestPermission : h.queryPermission;
  return fn ? fn.call(handle, { mode: "read" }) : "granted";
}

/**
 * How a row begins: new, or interrupted in an earlier session, possibly with its copy kept in this
 * browser (`copy`, already checked against the fingerprint) and what the page says about that copy.
 */
export type UploadStart = { kind: "interrupted"; reason: InterruptReason; hashedTo?: number; copy?: File; staged?: StagedState } | { kind: "new" };

export function createUpload(ctx: UploadContext, initial: UploadRecord, start: UploadStart): UploadController {
  return new Upload(ctx, initial, start);
}

// No parameter properties or other non-erasable syntax: the CLI runs this file through Node's type stripping.
class Upload implements UploadController {
  readonly key: string;
  readonly name: string;
  readonly #ctx: UploadContext;
  readonly #records: RecordKeeper;
  readonly #view: SessionView;
  readonly #scope: RunScope;
  #phase: Phase;
  /** The bytes to hash and send in this session; undefined until a file (or an opened handle) is given. */
  #source: Blob | undefined;
  /** The copy kept in this browser, when this row came back from an earlier session with one. */
  readonly #copy: File | undefined;

  constructor(ctx: UploadContext, initial: UploadRecord, start: UploadStart) {
    this.key = initial.key;
    this.name = initial.name;
    this.#ctx = ctx;
    this.#records = keepRecord(ctx.store, initial);
    const hashedAtStart = initial.digest ? initial.size : start.kind === "interrupted" ? (start.hashedTo ?? 0) : 0;
    this.#view = {
      hash: createMeter(initial.size, hashedAtStart),
      transfer: createMeter(initial.size, initial.uploadedTo ?? 0),
      counters: { hashRead: 0, sent: 0 },
      runs: 0,
      staged: ctx.staging === "off" ? { kind: "off" } : start.kind === "interrupted" ? start.staged : undefined,
    };
    this.#copy = start.kind === "interrupted" ? start.copy : undefined;
    this.#source = this.#copy; // continues from the copy unless the person gives the file itself
    this.#phase = start.kind === "interrupted" ? { kind: "interrupted", reason: start.reason } : { kind: "new" };
    this.#scope = {
      ctx,
      key: initial.key,
      size: initial.size,
      fromEarlierSession: start.kind === "interrupted",
      records: this.#records,
      view: this.#view,
      urlStorage: urlStorageOver(this.#records, initial.size, () => ctx.changed(this, true)),
      changed: (urgent) => ctx.changed(this, urgent),
      gone: (status) => {
        this.#view.resumedUploadAt = undefined;
        this.#view.notice = errors.uploadGone(status);
        ctx.failed(this, this.#view.notice);
      },
    };
  }

  phase(): Phase["kind"] {
    return this.#phase.kind;
  }

  active(): boolean {
    return isWorking(this.#phase) && !this.#phase.work.ended;
  }

  snapshot(): UploadSnapshot {
    const record = this.#records.current;
    return snapshotOf(record, stateOf(this.#phase, record.digest, this.#view), this.#view);
  }

  async start(file: Blob, handle?: FileSystemFileHandle): Promise<void> {
    if (this.active() || this.#phase.kind === "done" || this.#phase.kind === "cancelled") return;
    this.#source = file;
    this.#view.fromCopy = file === this.#copy;
    await this.#records.patch({ paused: false, ...(handle ? { handle } : {}) });
    // A paused upload kept its lock; any other starts without one.
    const work: Work = { stop: new AbortController(), lock: this.#phase.kind === "paused" ? this.#phase.lock : undefined, ended: false };
    this.#phase = { kind: "queued", work }; // not announced: drive() says busy, queued or running next
    work.driven = this.#drive(work).finally(() => void (work.ended = true));
  }

  async pause(): Promise<void> {
    if (!this.active() || !isWorking(this.#phase)) return;
    const { work } = this.#phase;
    await halt(work);
    await this.#records.patch({ paused: true });
    // A run that ended on its own meanwhile (done, failed) keeps its phase.
    const now = this.#phase;
    if (isWorking(now) && now.work === work) this.#setPhase({ kind: "paused", lock: work.lock });
  }

  async resume(): Promise<void> {
    if (this.active() || this.#phase.kind === "done" || this.#phase.kind === "cancelled") return;
    const handle = this.#records.current.handle;
    if (!this.#source && handle) {
      const opened = await this.#reopen(handle);
      if (!opened) return;
      this.#source = opened;
    }
    if (!this.#source) {
      this.#setPhase({ kind: "interrupted", reason: "needs-file" });
      this.#ctx.failed(this, errors.fileNeeded(this.name));
      return;
    }
    await this.start(this.#source);
  }

  async cancel(): Promise<void> {
    if (isWorking(this.#phase)) await halt(this.#phase.work);
    this.#releaseLock();
    const { uploadUrl } = this.#records.current;
    if (uploadUrl && this.#phase.kind !== "done") await deleteUpload(uploadUrl, this.#ctx.token);
    await this.#records.close();
    await this.#ctx.store.delete(this.key);
    await this.#ctx.hasher.forget(this.key).catch(() => {});
    await this.#removeCopy();
    await this.#records.patch({ uploadUrl: undefined });
    this.#setPhase({ kind: "cancelled" });
  }

  dispose(): void {
    if (isWorking(this.#phase)) {
      const { work } = this.#phase;
      work.stop.abort(new Stopped());
      work.hashRun?.pause();
      work.transferRun?.pause();
    }
    this.#releaseLock();
  }

  #setPhase(next: Phase): void {
    this.#phase = next;
    this.#ctx.changed(this, true);
  }

  /** Releases the lock the current phase holds, if any. */
  #releaseLock(): void {
    const phase = this.#phase;
    const holder = isWorking(phase) ? phase.work : phase.kind === "paused" ? phase : undefined;
    holder?.lock?.();
    if (holder) holder.lock = undefined;
  }

  #fail(error: UploadError): void {
    this.#releaseLock();
    this.#setPhase({ kind: "failed", error });
    this.#ctx.failed(this, error);
  }

  async #drive(work: Work): Promise<void> {
    const signal = work.stop.signal;
    try {
      work.lock ??= await this.#acquireLock(work);
      if (!this.#ctx.slots.available()) this.#setPhase({ kind: "queued", work });
      const releaseSlot = await this.#ctx.slots.acquire(signal);
      try {
        this.#setPhase({ kind: "running", work });
        const file = this.#source;
        if (!file) throw new Stopped();
        await this.#finish(work, await runUpload(this.#scope, work, file));
      } finally {
        releaseSlot();
      }
    } catch (error) {
      if (signal.aborted || error instanceof Stopped) return;
      this.#fail(errors.toUploadError(error));
    }
  }

  /** This file's Web Lock; while another tab holds it the row is busy, and takes over what that tab left. */
  async #acquireLock(work: Work): Promise<Release> {
    const name = `edge-upload:${this.key}`;
    const now = await this.#ctx.locks.tryAcquire(name);
    if (now) return now;
    this.#setPhase({ kind: "busy", work });
    const lock = await this.#ctx.locks.acquire(name, work.stop.signal);
    const stored = await this.#ctx.store.get(this.key);
    if (stored) this.#records.adopt(stored);
    return lock;
  }

  /** The edge has the file: nothing of it is kept here any more. */
  async #finish(work: Work, done: { digest: Sha256Digest; blobUrl: string; uploadUrl: string }): Promise<void> {
    await this.#records.close();
    // tus-js-client dropped the URL from its storage on success; the row still shows it.
    if (done.uploadUrl) await this.#records.patch({ uploadUrl: done.uploadUrl });
    await this.#ctx.hasher.forget(this.key).catch(() => {});
    await this.#removeCopy();
    await this.#ctx.store.delete(this.key).catch(() => {});
    work.lock?.();
    work.lock = undefined;
    this.#setPhase({ kind: "done", digest: done.digest, blobUrl: done.blobUrl });
  }

  /** The edge has the file or the person cancelled: the copy kept in this browser goes (a failed removal is swept at the next start-up). */
  async #removeCopy(): Promise<void> {
    const staging = this.#ctx.staging;
    if (staging && staging !== "off") await staging.remove(this.key).catch(() => undefined);
    if (this.#view.staged?.kind !== "off") this.#view.staged = undefined;
  }

  /** Opens the kept handle from a click; undefined when the row cannot continue (it then says why). */
  async #reopen(handle: FileSystemFileHandle): Promise<Blob | undefined> {
    // Must be the first await of a click handler: the browser asks the person here.
    const permission = await handlePermission(handle, true).catch(() => "denied" as const);
    if (permission !== "granted") {
      this.#setPhase({ kind: "interrupted", reason: "needs-permission" });
      this.#ctx.failed(this, errors.permissionDenied());
      return undefined;
    }
    let opened: File;
    try {
      opened = await handle.getFile();
    } catch (error) {
      this.#fail(errors.toUploadError(error));
      return undefined;
    }
    if ((await fingerprint(opened)) !== this.key) {
      this.#fail(errors.fileChangedSinceStart(this.name));
      return undefined;
    }
    return opened;
  }
}

/** Stops the work (the runs save what they have) and waits until it has stopped. */
async function halt(work: Work): Promise<void> {
  work.stop.abort(new Stopped());
  work.hashRun?.pause();
  work.transferRun?.pause();
  await work.driven;
  await work.hashRun?.result.catch(() => {});
}

/** tus-js-client's URL storage over the record: the upload URL is kept there and nowhere else. */
function urlStorageOver(records: RecordKeeper, size: number, announce: () => void): tus.UrlStorage {
  return {
    findAllUploads: async () => [],
    findUploadsByFingerprint: async () => {
      const { key, uploadUrl, createdAt } = records.current;
      return uploadUrl ? [{ size, metadata: {}, creationTime: new Date(createdAt).toString(), urlStorageKey: key, uploadUrl, parallelUploadUrls: null }] : [];
    },
    removeUpload: async () => void (await records.patch({ uploadUrl: undefined })),
    addUpload: async (_fingerprint, upload) => {
      const written = records.patch({ uploadUrl: upload.uploadUrl ?? undefined });
      announce(); // the row shows its upload URL at once
      await written;
      return records.current.key;
    },
  };
}

/** The public state of a phase: working phases show what they do, never what they hold. */
function stateOf(phase: Phase, digest: Sha256Digest | undefined, view: SessionView): UploadState {
  switch (phase.kind) {
    case "running":
      return digest || view.hash.progress().bytes >= view.hash.progress().total ? { kind: "uploading" } : { kind: "hashing" };
    case "busy":
      return { kind: "busy", reason: "other-tab" };
    case "new":
    case "queued":
      return { kind: "queued" };
    case "paused":
      return { kind: "paused" };
    case "interrupted":
      return { kind: "interrupted", reason: phase.reason };
    case "done":
      return { kind: "done", digest: phase.digest, blobUrl: phase.blobUrl, bytesSent: view.counters.sent };
    case "failed":
      return { kind: "failed", error: phase.error };
    case "cancelled":
      return { kind: "cancelled" };
  }
}

function snapshotOf(record: UploadRecord, state: UploadState, view: SessionView): UploadSnapshot {
  const { retrying, notice } = view;
  return {
    key: record.key,
    name: record.name,
    size: record.size,
    type: record.type,
    lastModified: record.lastModified,
    state,
    hash: view.hash.progress(),
    transfer: view.transfer.progress(),
    ...(record.digest ? { digest: record.digest } : {}),
    ...(view.resumedHashAt !== undefined ? { resumedHashAt: view.resumedHashAt } : {}),
    ...(view.resumedUploadAt !== undefined ? { resumedUploadAt: view.resumedUploadAt } : {}),
    hasHandle: record.handle !== undefined,
    ...(record.uploadUrl ? { uploadUrl: record.uploadUrl } : {}),
    counters: { ...view.counters },
    // While it waits for a retry the row says so (with a countdown: snapshots are taken every
    // 250 ms while it runs); the older notice comes back once the retry got through.
    ...(retrying ? { retry: retrying, notice: errors.retryNotice(retrying) } : notice ? { notice } : {}),
    ...(view.staged ? { staged: view.staged } : {}),
    ...(view.fromCopy ? { fromCopy: true } : {}),
  };
}
