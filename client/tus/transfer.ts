/**
 * The transfer process: tus-js-client driven through its pluggable parts (urlStorage over our
 * store, a fileReader, an httpStack that counts PATCH bytes) and its request hooks:
 * - `Repr-Digest` (RFC 9530) on creation when the digest is known, else on every PATCH once
 *   hashing is done (the edge then moves what it stored to the blob path and finishes without a
 *   copy), and always on the final PATCH, which waits for the hasher;
 * - an upload the edge completes at creation (blob already stored: dedupe) is finished from
 *   the POST's answer, so no bytes go out (tus-js-client ignores the POST's offset);
 * - a stored upload the edge no longer knows (HEAD 404/410) is reported as gone (tus-js-client
 *   then starts a new one from 0, which is what we want, but silently);
 * - failed requests are retried by our policy (client/retry.ts), not a fixed list of waits.
 */
import * as tus from "tus-js-client";
import { formatReprDigest, parseReprDigest, type Sha256Digest } from "../../shared/digest.ts";
import { isFileReadError } from "../errors.ts";
import { delayForRate } from "../progress.ts";
import { isRetryableStatus, retryAfterOf, type RetryPolicy } from "../retry.ts";
import type { RetryState } from "../types.ts";
import { answerOf, countingStack, headFinished, resolveToken, type TokenSource, toTransferFailure } from "./requests.ts";

export interface TransferInput {
  key: string;
  file: Blob;
  size: number;
  name: string;
  type: string;
  /** Absolute tus endpoint. */
  endpoint: string;
  chunkSize: number;
  /** When and how long to wait before trying a failed request again. */
  retry: RetryPolicy;
  token?: TokenSource;
  urlStorage: tus.UrlStorage;
  /** Known before the transfer starts: declared at creation (lets the edge dedupe). */
  digest?: Sha256Digest;
  /** Resolves once hashing is done; PATCHes carry it from then on, and the final PATCH waits for it. */
  waitForDigest(): Promise<Sha256Digest>;
  /** Turns bytes [start, end) of the file into a request body (Node's http stack wants a stream, not a Blob). */
  toBody?: (file: Blob, start: number, end: number) => Promise<unknown>;
  /** Bytes per second at most. */
  rate?: number;
  /** A stored upload answered HEAD 200 at this offset (resume). */
  onResumed?(offset: number): void;
  /** A stored upload is gone on the edge (404/410); the transfer continues with a new one. */
  onGone?(status: number): void;
  onProgress?(offset: number): void;
  onChunkComplete?(offset: number): void;
  /** A PATCH body of this many bytes is about to be sent. */
  onSend?(bytes: number): void;
  /** A failed request will be tried again (state), or the retried requests got through (undefined). */
  onRetry?(state: RetryState | undefined): void;
}

export type TransferResult =
  | { kind: "done"; digest: Sha256Digest | undefined; blobUrl: string | undefined; uploadUrl: string }
  | { kind: "paused" }
  | { kind: "gone"; status: number };

export interface TransferRun {
  result: Promise<TransferResult>;
  pause(): void;
}

class StopSignal extends Error {
  readonly why: "paused" | "complete-at-creation";
  constructor(why: StopSignal["why"]) {
    super(why);
    this.why = why;
  }
}

export function startTransfer(input: TransferInput): TransferRun {
  let paused = false; // paused by the caller, or finished without tus-js-client (dedupe)
  let resolvePause: (() => void) | undefined;
  const pausedPromise = new Promise<void>((resolve) => (resolvePause = resolve));
  let upload: tus.Upload | undefined;
  // A PATCH that ends at the file's end is the last one: the whole-file digest goes on it.
  const isFinalPatch = (req: tus.HttpRequest) => Number(req.getHeader("Upload-Offset")) + input.chunkSize >= input.size;
  // Hashing usually ends long before the transfer (it is faster than most links): declaring the
  // digest on the next PATCH lets the edge move the few parts stored so far instead of copying
  // the whole upload at the finish.
  let known = input.digest;
  input.waitForDigest().then(
    (digest) => void (known = digest),
    () => undefined, // a failed hash surfaces through the upload, not here
  );
  /** The Repr-Digest a request carries: the known digest on creation and on every PATCH; the last PATCH waits for it. */
  const digestFor = async (req: tus.HttpRequest): Promise<Sha256Digest | undefined> => {
    const method = req.getMethod();
    if (method === "POST") return input.digest;
    if (method !== "PATCH") return undefined;
    if (!isFinalPatch(req)) return known;
    const digest = input.digest ?? (await Promise.race([input.waitForDigest(), pausedPromise.then(() => undefined)]));
    // XHR ignores abort() before send(); refuse to send instead of relying on it.
    if (paused || !digest) throw new StopSignal("paused");
    return digest;
  };

  const retries = createRetryHooks(input);

  let resolveResult: (r: TransferResult) => void = () => {};
  let rejectResult: (e: unknown) => void = () => {};
  const result = new Promise<TransferResult>((resolve, reject) => {
    resolveResult = resolve;
    rejectResult = reject;
    pausedPromise.then(() => resolve({ kind: "paused" }));
    const options: tus.UploadOptions = {
      endpoint: input.endpoint,
      chunkSize: input.chunkSize,
      retryDelays: retries.delays,
      metadata: { filename: input.name, filetype: input.type || "application/octet-stream", ...(input.digest ? { digest: input.digest } : {}) },
      fingerprint: async () => input.key,
      urlStorage: input.urlStorage,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      fileReader: blobFileReader(input),
      httpStack: countingStack(tus.defaultOptions.httpStack, (bytes) => input.onSend?.(bytes)),
      async onBeforeRequest(req) {
        if (paused) throw new StopSignal("paused");
        const token = await resolveToken(input.token);
        if (token) req.setHeader("Authorization", `Bearer ${token}`);
        const digest = await digestFor(req);
        if (digest) req.setHeader("Repr-Digest", formatReprDigest(digest));
      },
      async onAfterResponse(req, res) {
        const method = req.getMethod();
        const status = res.getStatus();
        if (status < 400) retries.recovered();
        if (method === "HEAD") reportResume(input, status, res);
        // The edge already had this blob: the upload is complete at creation. tus-js-client
        // ignores a POST's offset and would send a PATCH, so stop it here: no bytes go out.
        if (method === "POST" && status === 201 && input.size > 0 && Number(res.getHeader("Upload-Offset")) === input.size) {
          const location = res.getHeader("Location");
          const uploadUrl = location ? new URL(location, input.endpoint).toString() : "";
          paused = true;
          void upload?.abort(false);
          void finish(input, res, uploadUrl).then(resolveResult, rejectResult);
          throw new StopSignal("complete-at-creation");
        }
      },
      onShouldRetry: (err, attempt) => !paused && !(err.causingError instanceof StopSignal) && retries.shouldRetry(err, attempt),
      onProgress(sent) {
        retries.recovered();
        input.onProgress?.(sent);
      },
      onChunkComplete(_chunk, accepted) {
        input.onChunkComplete?.(accepted);
      },
      onSuccess({ lastResponse }) {
        void finish(input, lastResponse, upload?.url ?? "").then(resolve, reject);
      },
      onError(err) {
        if (paused) return;
        const status = err instanceof tus.DetailedError ? (err.originalResponse?.getStatus() ?? 0) : 0;
        if (status === 404 || status === 410) resolve({ kind: "gone", status });
        else reject(toTransferFailure(err, retries.exhausted()));
      },
    };
    upload = new tus.Upload(input.file, options);
    startOrResume(upload, () => paused).catch(reject);
  });

  return {
    result,
    pause() {
      if (paused) return;
      paused = true;
      void upload?.abort(false);
      resolvePause?.();
    },
  };
}

/**
 * The last response names the blob; a 0-byte upload or an older edge may need a HEAD for it. The
 * signed `Upload-Blob-Url` (an edge with a secret) wins over the plain `Content-Location`: a link
 * cannot carry the token, and the signed one opens without it (in a fresh browser, say).
 */
async function finish(input: TransferInput, res: tus.HttpResponse, uploadUrl: string): Promise<TransferResult> {
  const repr = res.getHeader("Repr-Digest");
  let location = res.getHeader("Upload-Blob-Url") || res.getHeader("Content-Location");
  let digest = repr ? (parseReprDigest(repr) ?? undefined) : undefined;
  if (!location && uploadUrl) ({ location, digest } = await headFinished(uploadUrl, input.token));
  return { kind: "done", digest, blobUrl: location ? new URL(location, input.endpoint).toString() : undefined, uploadUrl };
}

/** What the resume HEAD said: where the upload continues, or that the edge lost it. */
function reportResume(input: TransferInput, status: number, res: tus.HttpResponse): void {
  if (status === 200) input.onResumed?.(Number(res.getHeader("Upload-Offset")));
  else if (status === 404 || status === 410) input.onGone?.(status);
}

/** Continues the upload stored under this key (its URL in urlStorage), else starts a new one. */
async function startOrResume(upload: tus.Upload, paused: () => boolean): Promise<void> {
  const previous = await upload.findPreviousUploads();
  const last = previous[previous.length - 1];
  if (last) upload.resumeFromPreviousUpload(last);
  if (!paused()) upload.start();
}

/**
 * The retry side of a transfer. tus-js-client only knows a `retryDelays` array: it retries while
 * `attempt < length`, asking onShouldRetry first, then waits `retryDelays[attempt]`, and counts
 * from 0 again once the upload's offset moved. So the array is ours and grows by one in
 * shouldRetry, which writes the policy's wait for this very error (Retry-After included) into
 * the slot read next.
 */
function createRetryHooks(input: TransferInput) {
  const delays = [0];
  let streakStart = 0; // when the current run of failures began
  let retrying = false;
  let exhausted: { failures: number; elapsedMs: number } | undefined;
  return {
    delays,
    exhausted: () => exhausted,
    recovered() {
      if (!retrying) return;
      retrying = false;
      input.onRetry?.(undefined);
    },
    shouldRetry(err: tus.DetailedError, attempt: number): boolean {
      if (isFileReadError(err.causingError)) return false; // the file will not come back by waiting
      const res = err.originalResponse;
      const status = res?.getStatus() ?? 0;
      if (!isRetryableStatus(status)) return false;
      const now = Date.now();
      if (attempt === 0) streakStart = now; // the first failure, or the first since progress
      const failures = attempt + 1;
      if (!input.retry.allows(failures)) {
        exhausted = { failures, elapsedMs: now - streakStart };
        return false;
      }
      const wait = input.retry.delay(attempt, retryAfterOf(res, now));
      delays[attempt] = wait;
      if (delays.length <= failures) delays.push(0); // tus checks the length before asking again
      retrying = true;
      input.onRetry?.({ failures, maxAttempts: input.retry.maxAttempts, status, code: answerOf(res).code, at: now + wait });
      return true;
    },
  };
}

/** tus-js-client's FileReader over a Blob, with an optional rate limit. */
function blobFileReader(input: TransferInput): tus.FileReader {
  return {
    async openFile(file: Blob) {
      const started = Date.now();
      let served = 0;
      return {
        size: file.size,
        async slice(start: number, end: number) {
          if (input.rate) await delayForRate(started, served, input.rate);
          const stop = Math.min(end, file.size);
          served += stop - start;
          const value = input.toBody ? await input.toBody(file, start, stop) : file.slice(start, stop);
          return { value, done: stop >= file.size };
        },
        close() {},
      };
    },
  };
}
