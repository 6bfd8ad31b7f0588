/**
 * The tus requests the client makes outside tus-js-client's upload loop (the HEAD that names the
 * blob after a finish, the DELETE of a cancel), the http stack wrapper that counts PATCH bytes,
 * and how an edge's answer becomes an UploadError.
 */
import * as tus from "tus-js-client";
import { parseReprDigest, type Sha256Digest } from "../../shared/digest.ts";
import { H } from "../../shared/protocol.ts";
import * as errors from "../errors.ts";
import { isRetryableStatus } from "../retry.ts";

export type TokenSource = string | (() => string | Promise<string>);

export async function resolveToken(token: TokenSource | undefined): Promise<string | undefined> {
  return typeof token === "function" ? await token() : token;
}

async function tusHeaders(token: TokenSource | undefined): Promise<Record<string, string>> {
  const bearer = await resolveToken(token);
  return { "Tus-Resumable": "1.0.0", ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}) };
}

/** A finished upload's blob location and digest, asked of the edge when the last answer lacked them. */
export async function headFinished(uploadUrl: string, token: TokenSource | undefined): Promise<{ location?: string; digest?: Sha256Digest }> {
  const head = await fetch(uploadUrl, { method: "HEAD", headers: await tusHeaders(token) });
  const repr = head.headers.get(H.reprDigest);
  const location = head.headers.get(H.uploadBlobUrl) ?? head.headers.get(H.contentLocation) ?? undefined;
  return { location, digest: repr ? (parseReprDigest(repr) ?? undefined) : undefined };
}

/** Removes an upload on the edge (tus termination); a failure is ignored, the edge expires it anyway. */
export async function deleteUpload(uploadUrl: string, token: TokenSource | undefined): Promise<void> {
  const headers = await tusHeaders(token).catch(() => ({ "Tus-Resumable": "1.0.0" }));
  await fetch(uploadUrl, { method: "DELETE", headers }).catch(() => undefined);
}

/** Wraps an http stack to count PATCH body bytes as each request starts. */
export function countingStack(base: tus.HttpStack, onSend: (bytes: number) => void): tus.HttpStack {
  return {
    getName: () => `counting(${base.getName()})`,
    createRequest(method, url) {
      const req = base.createRequest(method, url);
      return {
        getMethod: () => req.getMethod(),
        getURL: () => req.getURL(),
        setHeader: (name, value) => req.setHeader(name, value),
        getHeader: (name) => req.getHeader(name),
        setProgressHandler: (handler) => req.setProgressHandler(handler),
        send(body: unknown) {
          if (method === "PATCH" && body) onSend(bodySize(body));
          const sending = req.send(body);
          failWithBody(body, req);
          return sending;
        },
        abort: () => req.abort(),
        getUnderlyingObject: () => req.getUnderlyingObject(),
      };
    },
  };
}

/**
 * A body stream that fails mid-way (Node: the file changed on disk, client/disk-file.ts) must
 * fail its request. Node's `pipe`, which tus-js-client's Node stack uses, leaves the request
 * waiting for the rest of the body and the error unhandled (fatal for the process). Browsers
 * send Blobs: nothing to do there.
 */
function failWithBody(body: unknown, req: tus.HttpRequest): void {
  const stream = body as { once?: (event: "error", listener: (error: Error) => void) => unknown };
  if (typeof stream?.once !== "function") return;
  stream.once("error", (error) => {
    const underlying = req.getUnderlyingObject() as { destroy?: (error: Error) => void } | null;
    underlying?.destroy?.(error); // a request already aborted (pause) ignores it
  });
}

function bodySize(body: unknown): number {
  if (body instanceof Blob) return body.size;
  if (body instanceof Uint8Array) return body.byteLength;
  const size = (body as { size?: unknown }).size;
  return typeof size === "number" ? size : 0;
}

/** The edge's JSON error body (`{code, message}`), when the answer has one. */
export function answerOf(res: tus.HttpResponse | null | undefined): { code?: string; detail?: string } {
  try {
    const body = JSON.parse(res?.getBody() ?? "") as { code?: unknown; message?: unknown };
    return { code: typeof body.code === "string" && body.code ? body.code : undefined, detail: typeof body.message === "string" ? body.message : undefined };
  } catch {
    return {}; // not JSON (or no body): the status says it all
  }
}

/**
 * Maps what tus-js-client reports to an error a person can act on. `exhausted`: the retry
 * policy gave up after this many failures in a row (a bounded `maxAttempts`).
 */
export function toTransferFailure(err: Error, exhausted?: { failures: number; elapsedMs: number }): errors.UploadFailure {
  const res = err instanceof tus.DetailedError ? err.originalResponse : null;
  const status = res?.getStatus() ?? 0;
  const { code, detail } = answerOf(res);
  const cause = err instanceof tus.DetailedError ? err.causingError : err;
  return new errors.UploadFailure(classify(status, code, detail, cause, exhausted), status || undefined);
}

function classify(status: number, code: string | undefined, detail: string | undefined, cause: unknown, exhausted?: { failures: number; elapsedMs: number }) {
  if (status === 0 && errors.isFileReadError(cause)) return errors.fileUnreadable();
  if (exhausted && isRetryableStatus(status)) return errors.retriesExhausted(status, code, exhausted.failures, exhausted.elapsedMs);
  if (status === 0) return errors.connectionFailed();
  if (status === 401 || status === 403) return errors.authRefused();
  if (code === "DIGEST_INVALID") return errors.digestRefused();
  if (status === 413) return errors.tooLarge(detail ?? "");
  if (status >= 500) return errors.serverProblem(status, code);
  return errors.serverRefused(status, code, detail);
}
