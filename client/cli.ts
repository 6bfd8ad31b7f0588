#!/usr/bin/env node
/**
 * edge-upload: upload a file to the edge from a terminal, resumably.
 *
 *   edge-upload upload <file> --endpoint <url> [--token <t>] [--state-dir <dir>]
 *                             [--chunk-size <size>] [--limit-rate <size/s>]
 *                             [--max-attempts <n|forever>] [--quiet]
 *
 * Runs with plain Node >= 22.18 (TypeScript type stripping; only erasable syntax in the files
 * it imports). State lives in --state-dir (default ~/.cache/edge-upload): run the same command
 * again after a crash, Ctrl-C or SIGKILL and the upload continues where it stopped. Hashing
 * (node:crypto, client/hashing/native.ts) keeps its finished digest; one cut short starts over,
 * at ~1.5 GB/s.
 *
 * stdout, when done: the digest (`sha256:<hex>`) on one line, the blob URL on the next.
 * stderr: progress (a bar on a terminal, a line every few seconds otherwise) and errors.
 *
 * A fault of the server or the network is retried with backoff (at least the server's
 * Retry-After), each wait announced on stderr, up to --max-attempts tries in a row (default 10,
 * a few minutes); then it exits 1 saying so, and running it again continues.
 *
 * Exit codes: 0 done · 1 upload failed (server refused, digest mismatch, retries ran out) ·
 * 2 bad usage · 3 file missing or unreadable · 4 authentication refused · 130 interrupted
 * (Ctrl-C: progress saved, run again to continue).
 */
import { parseArgs } from "node:util";
import { createNodeUploader, fileFromPath } from "./node.ts";
import { formatBytes, formatEta, percent } from "./progress.ts";
import { NODE_MAX_ATTEMPTS } from "./retry.ts";
import type { UploadError, UploadSnapshot } from "./types.ts";

export const EXIT = { ok: 0, failed: 1, usage: 2, file: 3, auth: 4, interrupted: 130 } as const;

const USAGE = `Usage: edge-upload upload <file> --endpoint <url> [options]

Uploads <file> over tus to an edge-upload server, verifying its SHA-256 end to end.
Interrupted runs (Ctrl-C, crash, kill -9) continue where they stopped when run again.

Options:
  --endpoint <url>      tus endpoint, e.g. https://edge.example/files (env EDGE_UPLOAD_ENDPOINT)
  --token <token>       bearer token (env EDGE_UPLOAD_TOKEN)
  --state-dir <dir>     where resume state is kept (default ~/.cache/edge-upload)
  --chunk-size <size>   bytes per PATCH, rounded down to the server's part size (default 32M)
  --limit-rate <size>   at most this many bytes per second (e.g. 10M)
  --max-attempts <n>    tries of a failing request (server or network fault) before giving
                        up, counted again after progress; "forever" never gives up (default ${NODE_MAX_ATTEMPTS})
  --quiet               no progress output
  -h, --help            this help

Sizes take K, M, G suffixes (binary: 1M = 1048576).
Exit codes: 0 done, 1 upload failed, 2 bad usage, 3 file unreadable, 4 auth refused, 130 interrupted.`;

class UsageError extends Error {}

export function parseSize(value: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  if (!m?.[1]) throw new UsageError(`${what}: "${value}" is not a size (examples: 8388608, 8M, 1.5G)`);
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? "").toLowerCase()] ?? 1;
  const n = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what}: "${value}" must be a positive size`);
  return n;
}

/** "--max-attempts": a positive whole number, or "forever" (also "inf", 0). */
export function parseAttempts(value: string): number {
  const text = value.trim().toLowerCase();
  if (text === "forever" || text === "inf" || text === "infinity" || text === "0") return Infinity;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new UsageError(`--max-attempts: "${value}" is not a number of tries (examples: 10, forever)`);
  return n;
}

export function normaliseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--endpoint: "${value}" is not a URL (example: https://edge.example/files)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--endpoint: use an http(s) URL, not ${url.protocol}`);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/files"; // a bare origin means its tus endpoint
  return url.toString();
}

function bar(fraction: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `${"#".repeat(full)}${".".repeat(width - full)}`;
}

function progressLine(u: UploadSnapshot): string {
  const part = (label: string, p: UploadSnapshot["hash"]) => {
    const f = p.total === 0 ? 1 : p.bytes / p.total;
    const left = formatEta(p.etaSeconds) || "time left unknown";
    return `${label} [${bar(f, 16)}] ${String(percent(p.bytes, p.total)).padStart(3)}% ${formatBytes(p.bytes)}/${formatBytes(p.total)} ${formatBytes(p.bytesPerSecond)}/s, ${left}`;
  };
  return `${part("hash", u.hash)}  ${part("upload", u.transfer)}`;
}

function exitCodeFor(error: UploadError): number {
  if (error.code === "AUTH") return EXIT.auth;
  if (error.code === "FILE_UNREADABLE" || error.code === "FILE_CHANGED") return EXIT.file;
  return EXIT.failed;
}

/** What the command line asks for, once parsed and checked. */
interface CliArgs {
  path: string;
  endpoint: string;
  token: string | undefined;
  stateDir: string | undefined;
  chunkSize: number | undefined;
  limitRate: number | undefined;
  maxAttempts: number;
  quiet: boolean;
}

/** Parses argv; "help" when usage was asked for. Throws UsageError (or a parse error) on bad input. */
function parseCli(argv: string[]): CliArgs | "help" {
  const args = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      endpoint: { type: "string" },
      token: { type: "string" },
      "state-dir": { type: "string" },
      "chunk-size": { type: "string" },
      "limit-rate": { type: "string" },
      "max-attempts": { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (args.values.help) return "help";
  const [command, file, ...extra] = args.positionals;
  if (command !== "upload") throw new UsageError(command ? `unknown command "${command}"` : "missing command");
  if (!file) throw new UsageError("missing <file>");
  if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(" ")} (one file per run)`);
  const rawEndpoint = args.values.endpoint ?? process.env.EDGE_UPLOAD_ENDPOINT;
  if (!rawEndpoint) throw new UsageError("missing --endpoint (or EDGE_UPLOAD_ENDPOINT)");
  const { values } = args;
  return {
    path: file,
    endpoint: normaliseEndpoint(rawEndpoint),
    token: values.token ?? process.env.EDGE_UPLOAD_TOKEN,
    stateDir: values["state-dir"],
    chunkSize: values["chunk-size"] ? parseSize(values["chunk-size"], "--chunk-size") : undefined,
    limitRate: values["limit-rate"] ? parseSize(values["limit-rate"], "--limit-rate") : undefined,
    maxAttempts: values["max-attempts"] !== undefined ? parseAttempts(values["max-attempts"]) : NODE_MAX_ATTEMPTS,
    quiet: values.quiet,
  };
}

/** The file to upload, or the exit code after saying why it cannot be read. */
async function openFile(path: string): Promise<File | number> {
  try {
    return await fileFromPath(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (error as Error).message;
    process.stderr.write(`edge-upload: cannot read ${path}: ${why}\n`);
    return EXIT.file;
  }
}

export async function main(argv: string[]): Promise<number> {
  let args: CliArgs | "help";
  try {
    args = parseCli(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`edge-upload: ${message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (args === "help") {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const file = await openFile(args.path);
  if (typeof file === "number") return file;

  const uploader = createNodeUploader({
    endpoint: args.endpoint,
    token: args.token,
    stateDir: args.stateDir,
    chunkSize: args.chunkSize,
    limitRate: args.limitRate ? { transfer: args.limitRate } : undefined,
    retry: { maxAttempts: args.maxAttempts },
    // A terminal user waits for the network, not the hasher: hash first when it lets the edge
    // skip a file it already has, unless the file is huge.
    hashFirst: 1024 * 1024 * 1024,
    concurrency: 1,
  });
  return new Promise<number>((resolve) => {
    const report = createReporter(uploader, args.quiet, (code) => {
      uploader.destroy();
      resolve(code);
    });
    process.once("SIGINT", report.interrupted);
    uploader.on(report.event);
    uploader.add([file]).then(
      (added) => {
        if (added.length === 0 && uploader.list().length === 0) report.end(EXIT.failed);
      },
      (error: unknown) => {
        process.stderr.write(`edge-upload: ${(error as Error).message}\n`);
        report.end(EXIT.failed);
      },
    );
  });
}

type NodeUploader = ReturnType<typeof createNodeUploader>;
type UploaderListener = Parameters<NodeUploader["on"]>[0];

/**
 * Turns the uploader's events into what a terminal user reads on stderr (progress, resumes,
 * retries, errors) and the result on stdout, and ends the run with its exit code.
 */
function createReporter(uploader: NodeUploader, quiet: boolean, done: (code: number) => void) {
  const tty = process.stderr.isTTY === true;
  const nl = tty ? "\n" : "";
  let lastLine = 0;
  let announcedRetry = "";
  const announced = new Set<string>();
  const end = (code: number) => {
    if (tty && !quiet) process.stderr.write("\n");
    done(code);
  };
  const interrupted = () => {
    const u = uploader.list()[0];
    const stop = u ? uploader.pause(u.key) : Promise.resolve();
    void stop.finally(() => {
      process.stderr.write(`${nl}edge-upload: interrupted; progress saved. Run the same command again to continue.\n`);
      end(EXIT.interrupted);
    });
  };
  const failed = (u: UploadSnapshot, error: UploadError) => {
    if (error.code === "UPLOAD_GONE") {
      process.stderr.write(`${nl}edge-upload: ${error.message}\n`);
      return;
    }
    const stopped = u.state.kind === "failed" || !u.key;
    // The retries ran out on a fault that may pass: say how to continue.
    const again = stopped && error.retryable && (error.code === "SERVER" || error.code === "NETWORK");
    process.stderr.write(`${nl}edge-upload: ${error.message}${again ? " Run the same command again to continue where it stopped." : ""}\n`);
    if (stopped) end(exitCodeFor(error));
  };
  const progress = (u: UploadSnapshot) => {
    // Each wait for a retry once (the snapshot's countdown changes every tick).
    const retry = u.retry ? `${u.retry.failures}@${u.retry.at}` : "";
    if (retry && retry !== announcedRetry && u.notice) {
      announcedRetry = retry;
      process.stderr.write(`${nl}edge-upload: ${u.notice.message}\n`);
    }
    if (quiet) return;
    const now = Date.now();
    if (tty) process.stderr.write(`\r${progressLine(u)}`);
    else if (now - lastLine >= 2000) {
      lastLine = now;
      process.stderr.write(`${progressLine(u)}\n`);
    }
  };
  const event: UploaderListener = (event) => {
    const u = event.upload;
    if (event.type === "error") return failed(u, event.error);
    // Each offset is known at a different moment (checkpoint read, then the edge's HEAD).
    for (const [what, at] of [
      ["hashing", u.resumedHashAt],
      ["upload", u.resumedUploadAt],
    ] as const) {
      if (at === undefined || announced.has(what) || quiet) continue;
      announced.add(what);
      process.stderr.write(`${nl}edge-upload: resuming ${u.name}: ${what} at ${formatBytes(at)}\n`);
    }
    if (u.state.kind === "done") {
      if (!quiet) process.stderr.write(`${tty ? "\r" : ""}${progressLine(u)}\n`);
      process.stdout.write(`${u.state.digest}\n${u.state.blobUrl}\n`);
      end(EXIT.ok);
    } else if (u.state.kind === "busy") {
      process.stderr.write("edge-upload: another edge-upload process is uploading this file; waiting for it.\n");
    } else progress(u);
  };
  return { event, interrupted, end };
}

// Run when executed (node client/cli.ts or the bin), not when imported by tests.
if (import.meta.main ?? process.argv[1]?.endsWith("cli.ts")) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
