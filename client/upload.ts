/**
 * One upload: a hash process and a transfer process for one file, their state as an explicit
 * phase, and what is persisted so another session continues it. The uploader (uploader.ts)
 * owns the list; this file owns one row.
 *
 *   interrupted ──resume/add──▶ (busy: other tab) ──▶ (queued) ──▶ running ──▶ done
 *        ▲                                                   │  ▲      └──▶ failed
 *        └──────── reload ◀── paused ◀──pause────────────────┘  └──resume──┘
 *
 * "running" shows as `hashing` until the digest is known and as `uploading` after.
 */
import type { Sha256Digest } from "../shared/digest.ts";
import type * as tus from "tus-js-client";
import type { Locks, Release, Slots } from "./coordination.ts";
import { chooseChunkSize, type EdgeLimits } from "./tus/edge-limits.ts";
import { fingerprint } from "./fingerprint.ts";
import type { Hasher, HashRun } from "./hashing/hasher.ts";
import { createMeter } from "./progress.ts";
import * as errors from "./errors.ts";
import { toUploadError, UploadFailure } from "./errors.ts";
import type { RetryPolicy } from "./retry.ts";
import type { UploadRecord, UploadStore } from "./persist/records.ts";
import { deleteUpload, type TokenSource } from "./tus/requests.ts";
import { startTransfer, type TransferRun } from "./tus/transfer.ts";
import type { RetryState, UploadError, UploadSnapshot, UploadState } from "./types.ts";

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
  locks: Locks;
  slots: Slots;
  /** A state change (urgent: emit now) or progress (emitted by the uploader's ticker). */
  changed(upload: UploadController, urgent: boolean): void;
  failed(upload: UploadController, error: UploadError): void;
}

type Phase =
  | { kind: "queued" }
  | { kind: "running" }
  | { kind: "paused" }
  | { kind: "interrupted"; reason: "reload" | "needs-file" | "needs-permission" }
  | { kind: "busy" }
  | { kind: "done"; digest: Sha256Digest; blobUrl: string }
  | { kind: "failed"; error: UploadError };

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

class Stopped extends Error {}

export function createUpload(
  ctx: UploadContext,
  initial: UploadRecord,
  start: { kind: "interrupted"; reason: "reload" | "needs-file" | "needs-permission"; hashedTo?: number } | { kind: "new" },
): UploadController {
  let record = initial;
  const { key, size } = record;
  let phase: Phase = start.kind === "interrupted" ? { kind: "interrupted", reason: start.reason } : { kind: "queued" };
  let file: Blob | undefined;
  let handle = record.handle;
  let digest = record.digest;
  const hashMeter = createMeter(size, digest ? size : start.kind === "interrupted" ? (start.hashedTo ?? 0) : 0);
  const transferMeter = createMeter(size, record.uploadedTo ?? 0);
  const counters = { hashRead: 0, sent: 0 };
  let resumedHashAt: number | undefined;
  let resumedUploadAt: number | undefined;
  let notice: UploadError | undefined;
  let retrying: RetryState | undefined; // waiting to try a failed request again
  let uploadUrl = record.uploadUrl;
  let runs = 0;
  let lock: Release | undefined;
  let stop = new AbortController();
  let hashRun: HashRun | undefined;
  let transferRun: TransferRun | undefined;
  let driving: Promise<void> | undefined;

  // Record writes are serialised: tus-js-client's urlStorage, progress and phase all patch it.
  let writes = Promise.resolve();
  let closed = false; // done or cancelled: the record is deleted and must not come back
  const persist = (patch: Partial<UploadRecord>) => {
    record = { ...record, ...patch };
    if (closed) return writes;
    const snapshot = record;
    writes = writes.then(() => ctx.store.put(snapshot)).catch(() => {});
    return writes;
  };

  const setPhase = (next: Phase) => {
    phase = next;
    ctx.changed(self, true);
  };

  const fail = (error: UploadError) => {
    release();
    setPhase({ kind: "failed", error });
    ctx.failed(self, error);
  };

  const urlStorage: tus.UrlStorage = {
    findAllUploads: async () => [],
    findUploadsByFingerprint: async () =>
      record.uploadUrl
        ? [{ size, metadata: {}, creationTime: new Date(record.createdAt).toString(), urlStorageKey: key, uploadUrl: record.uploadUrl, parallelUploadUrls: null }]
        : [],
    removeUpload: async () => void (await persist({ uploadUrl: undefined })),
    addUpload: async (_fp, upload) => {
      await persist({ uploadUrl: upload.uploadUrl ?? undefined });
      return key;
    },
  };

  const state = (): UploadState => {
    switch (phase.kind) {
      case "running":
        return digest || hashMeter.progress().bytes >= size ? { kind: "uploading" } : { kind: "hashing" };
      case "busy":
        return { kind: "busy", reason: "other-tab" };
      case "done":
        return { kind: "done", digest: phase.digest, blobUrl: phase.blobUrl, bytesSent: counters.sent };
      default:
        return phase;
    }
  };

  async function drive(): Promise<void> {
    stop = new AbortController();
    const signal = stop.signal;
    try {
      if (!lock) {
        lock = await ctx.locks.tryAcquire(`edge-upload:${key}`);
        if (!lock) {
          setPhase({ kind: "busy" });
          lock = await ctx.locks.acquire(`edge-upload:${key}`, signal);
          // The other tab may have moved it on (or finished it): continue from what it left.
          const fresh = await ctx.store.get(key);
          if (fresh) record = { ...fresh, handle: record.handle ?? fresh.handle };
          digest = record.digest ?? digest;
          uploadUrl = record.uploadUrl;
        }
      }
      if (!ctx.slots.available()) setPhase({ kind: "queued" });
      const releaseSlot = await ctx.slots.acquire(signal);
      try {
        setPhase({ kind: "running" });
        await runOnce(signal);
      } finally {
        releaseSlot();
      }
    } catch (error) {
      if (signal.aborted || error instanceof Stopped) return;
      fail(toUploadError(error));
    }
  }

  async function runOnce(signal: AbortSignal): Promise<void> {
    const first = runs++ === 0;
    const source = file;
    if (!source) throw new Stopped();
    const chunkSize = chooseChunkSize(ctx.chunkSize, await ctx.limits());

    // Hashing: skipped when a previous session already finished it.
    let digestPromise: Promise<Sha256Digest>;
    if (digest) {
      if (first && start.kind === "interrupted") resumedHashAt = size;
      hashMeter.reset(size);
      digestPromise = Promise.resolve(digest);
    } else {
      const hashReadBefore = counters.hashRead;
      const run = ctx.hasher.start({
        key,
        file: source,
        checkpointInterval: ctx.checkpointInterval,
        rate: ctx.limitRate?.hash,
        onStart: (at) => {
          if (first && at !== undefined) resumedHashAt = at;
          hashMeter.reset(at ?? 0);
          ctx.changed(self, true);
        },
        onProgress: (offset, read) => {
          hashMeter.update(offset);
          counters.hashRead = hashReadBefore + read;
          ctx.changed(self, false);
        },
      });
      hashRun = run;
      digestPromise = run.result.then(async (r) => {
        if (r.kind !== "done") throw new Stopped();
        digest = r.digest;
        hashMeter.update(size);
        await persist({ digest: r.digest, hashedTo: size });
        ctx.changed(self, true); // hashing -> uploading
        return r.digest;
      });
    }
    // A hashing failure (unreadable file) stops the transfer too.
    const hashFailure = digestPromise.then(
      () => new Promise<never>(() => {}),
      (error: unknown) => {
        transferRun?.pause();
        throw error;
      },
    );
    hashFailure.catch(() => {});

    const hashFirst = ctx.hashFirst === true || (typeof ctx.hashFirst === "number" && size <= ctx.hashFirst) || size === 0;
    if (!digest && hashFirst) await digestPromise;
    if (signal.aborted) throw new Stopped();

    for (let attempt = 0; ; attempt++) {
      // Only a URL stored by an earlier session is a resume (a dedupe at creation also HEADs).
      const resuming = first && attempt === 0 && record.uploadUrl !== undefined;
      transferRun = startTransfer({
        key,
        file: source,
        size,
        name: record.name,
        type: record.type,
        endpoint: ctx.endpoint,
        chunkSize,
        retry: ctx.retry,
        token: ctx.token,
        urlStorage,
        digest,
        waitForDigest: () => digestPromise,
        toBody: ctx.toBody,
        rate: ctx.limitRate?.transfer,
        onResumed: (offset) => {
          if (resuming && resumedUploadAt === undefined) resumedUploadAt = offset;
          transferMeter.reset(offset);
          ctx.changed(self, true);
        },
        onGone: (status) => gone(status),
        onUrl: (url) => {
          uploadUrl = url;
          ctx.changed(self, true);
        },
        onProgress: (offset) => {
          transferMeter.update(offset);
          ctx.changed(self, false);
        },
        onChunkComplete: (offset) => void persist({ uploadedTo: offset }),
        onSend: (bytes) => {
          counters.sent += bytes;
        },
        onRetry: (state) => {
          retrying = state;
          ctx.changed(self, true);
        },
      });
      const result = await Promise.race([transferRun.result, hashFailure]).finally(() => {
        retrying = undefined; // whatever ended the transfer, it no longer waits for a retry
      });
      if (result.kind === "paused" || signal.aborted) throw new Stopped();
      if (result.kind === "gone") {
        // The edge lost or expired the upload mid-way: start a new one from 0, once or twice.
        gone(result.status);
        await persist({ uploadUrl: undefined, uploadedTo: 0 });
        uploadUrl = undefined;
        transferMeter.reset(0);
        if (attempt >= 2) throw new UploadFailure(errors.uploadKeptGone());
        continue;
      }
      const ours = await digestPromise;
      if (result.digest && result.digest !== ours) {
        throw new UploadFailure(errors.digestMismatch(result.digest, ours));
      }
      const blobUrl = result.blobUrl ?? new URL(`/blobs/${ours}`, ctx.endpoint).toString();
      transferMeter.update(size);
      uploadUrl = result.uploadUrl || uploadUrl;
      closed = true;
      await writes;
      await ctx.hasher.forget(key).catch(() => {});
      await ctx.store.delete(key).catch(() => {});
      release();
      setPhase({ kind: "done", digest: ours, blobUrl });
      return;
    }
  }

  function gone(status: number) {
    resumedUploadAt = undefined;
    notice = errors.uploadGone(status);
    ctx.failed(self, notice);
  }

  function release() {
    lock?.();
    lock = undefined;
  }

  async function halt(): Promise<void> {
    stop.abort(new Stopped());
    hashRun?.pause();
    transferRun?.pause();
    await driving;
    await hashRun?.result.catch(() => {});
  }

  const self: UploadController = {
    key,
    name: record.name,
    phase: () => phase.kind,
    active: () => driving !== undefined,
    snapshot: () => ({
      key,
      name: record.name,
      size,
      type: record.type,
      lastModified: record.lastModified,
      state: state(),
      hash: hashMeter.progress(),
      transfer: transferMeter.progress(),
      ...(digest ? { digest } : {}),
      ...(resumedHashAt !== undefined ? { resumedHashAt } : {}),
      ...(resumedUploadAt !== undefined ? { resumedUploadAt } : {}),
      hasHandle: handle !== undefined,
      ...(uploadUrl ? { uploadUrl } : {}),
      counters: { ...counters },
      // While it waits for a retry the row says so (with a countdown: snapshots are taken every
      // 250 ms while it runs); the older notice comes back once the retry got through.
      ...(retrying ? { retry: retrying, notice: errors.retryNotice(retrying) } : notice ? { notice } : {}),
    }),
    async start(f, h) {
      if (self.active() || phase.kind === "done") return;
      file = f;
      if (h) handle = h;
      await persist({ paused: false, ...(h ? { handle: h } : {}) });
      const run = drive().finally(() => {
        if (driving === run) driving = undefined;
      });
      driving = run;
    },
    async pause() {
      if (!self.active()) return;
      await halt();
      await persist({ paused: true });
      setPhase({ kind: "paused" });
    },
    async resume() {
      if (self.active() || phase.kind === "done") return;
      if (!file && handle) {
        // Must be the first await of a click handler: the browser asks the person here.
        const permission = await handlePermission(handle, true).catch(() => "denied" as const);
        if (permission !== "granted") {
          setPhase({ kind: "interrupted", reason: "needs-permission" });
          ctx.failed(self, errors.permissionDenied());
          return;
        }
        let opened: File;
        try {
          opened = await handle.getFile();
        } catch (error) {
          return fail(toUploadError(error));
        }
        if ((await fingerprint(opened)) !== key) {
          return fail(errors.fileChangedSinceStart(record.name));
        }
        file = opened;
      }
      if (!file) {
        setPhase({ kind: "interrupted", reason: "needs-file" });
        ctx.failed(self, errors.fileNeeded(record.name));
        return;
      }
      await self.start(file);
    },
    async cancel() {
      await halt();
      release();
      const url = uploadUrl ?? record.uploadUrl;
      if (url && phase.kind !== "done") {
        await deleteUpload(url, ctx.token);
      }
      closed = true;
      await writes;
      await ctx.store.delete(key);
      await ctx.hasher.forget(key).catch(() => {});
      uploadUrl = undefined;
      setPhase({ kind: "failed", error: errors.cancelled() });
    },
    dispose() {
      stop.abort(new Stopped());
      hashRun?.pause();
      transferRun?.pause();
      release();
    },
  };
  return self;
}
