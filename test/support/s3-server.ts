/**
 * The real S3 server for the S3 tests: Ceph's RADOS Gateway (radosgw 16.2, Debian), a throwaway
 * single-node cluster held in RAM on loopback, brought up by scripts/rgw.sh with free ports and a
 * state directory of this run's own, and stopped (its recorded PIDs) when the run ends. It is the
 * vitest globalSetup of the workerd-s3 project (vitest.config.ts), which provides its endpoint and
 * credentials to the tests as inject("s3") and, through the project's Miniflare bindings, to the
 * edge's STORAGE=s3 configuration.
 *
 * RGW replaced s3rver (and the harness this file carried for what s3rver lacked: SigV4
 * verification, payload hash checks, conditional PUT, ListParts, AbortMultipartUpload,
 * UploadPartCopy, Complete's part checks, ListObjectsV2 paging): RGW implements all of these
 * itself, plus ListMultipartUploads, as a store users run in production does.
 *
 * Set S3_TEST_ENDPOINT (with S3_TEST_REGION, S3_TEST_BUCKET, S3_TEST_ACCESS_KEY_ID,
 * S3_TEST_SECRET_ACCESS_KEY; the bucket must exist) to run the same tests against another store
 * (MinIO, AWS) instead of starting RGW.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AwsClient } from "aws4fetch";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    s3: S3ServerInfo;
  }
}

/** What the tests need to reach the server (serialisable: it crosses into workerd). */
export interface S3ServerInfo {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3TestServer extends S3ServerInfo {
  close(): Promise<void>;
}

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, "../../scripts/rgw.sh");
const BUCKET = "edge-upload-test";
/**
 * The OSD's RAM cap. The S3 tests store ~300 MiB in all; RGW frees deleted data only through
 * its garbage collector (every 30 s here), so the cap leaves room for a run's worth.
 */
const RAM_MIB = 1536;

/** A port free on 127.0.0.1 right now (the OS picks it; closed again at once). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

function parseEnv(output: string): Record<string, string> {
  return Object.fromEntries(
    output
      .split("\n")
      .map((line) => /^(S3_[A-Z_]+)=(.*)$/.exec(line.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1] as string, m[2] as string]),
  );
}

/** Starts a throwaway RGW (scripts/rgw.sh) with `bucket` created; `close` stops it and removes its state. */
export async function startRgw(
  options: { bucket?: string; ramMib?: number; port?: number } = {},
): Promise<S3TestServer & { directory: string; seconds: number }> {
  const bucket = options.bucket ?? BUCKET;
  const directory = await mkdtemp(join(tmpdir(), "edge-upload-rgw-"));
  // rgw.sh refuses to take over a directory it did not make: it starts in a fresh one below.
  const dir = join(directory, "rgw");
  const [port, monPort] = [options.port ?? (await freePort()), await freePort()];
  const args = ["up", "--dir", dir, "--port", String(port), "--mon-port", String(monPort), "--ram-mib", String(options.ramMib ?? RAM_MIB)];
  const started = performance.now();
  // The daemons detach, so a run killed before its teardown (Ctrl-C twice, a CI timeout, SIGKILL)
  // would leave them holding their RAM: a watcher takes them down once this process is gone.
  const watcher = spawn(
    "bash",
    [
      "-c",
      'while kill -0 "$1" 2>/dev/null; do sleep 2; done; bash "$2" down --dir "$3"; rm -rf "$4"',
      "rgw-watch",
      String(process.pid),
      SCRIPT,
      dir,
      directory,
    ],
    { detached: true, stdio: "ignore" },
  );
  watcher.unref();
  const close = async () => {
    if (watcher.pid !== undefined) {
      try {
        process.kill(watcher.pid);
      } catch {
        // Already gone.
      }
    }
    await run("bash", [SCRIPT, "down", "--dir", dir]).catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
  };
  let stdout: string;
  try {
    ({ stdout } = await run("bash", [SCRIPT, ...args], { timeout: 120_000 }));
  } catch (error) {
    await close();
    const e = error as { stderr?: string; code?: number };
    const hint = e.code === 3 ? " (install it: apt-get install --no-install-recommends radosgw ceph-mon ceph-osd; .ci/run does)" : "";
    throw new Error(`could not start the test S3 server (Ceph RGW) with scripts/rgw.sh${hint}:\n${e.stderr ?? String(error)}`);
  }
  const env = parseEnv(stdout);
  const info: S3ServerInfo = {
    endpoint: env.S3_ENDPOINT ?? `http://127.0.0.1:${port}`,
    region: env.S3_REGION ?? "us-east-1",
    bucket,
    accessKeyId: env.S3_ACCESS_KEY_ID ?? "",
    secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? "",
  };
  try {
    await createBucket(info);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    ...info,
    directory: dir,
    seconds: (performance.now() - started) / 1000,
    close,
  };
}

/** CreateBucket (here rather than in rgw.sh, which would need curl); an existing bucket of ours is fine. */
async function createBucket(info: S3ServerInfo): Promise<void> {
  const client = new AwsClient({ accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey, service: "s3", region: info.region });
  const res = await client.fetch(`${info.endpoint}/${info.bucket}`, { method: "PUT" });
  const body = await res.text();
  if (!res.ok && !body.includes("BucketAlreadyOwnedByYou")) throw new Error(`CreateBucket ${info.bucket}: HTTP ${res.status} ${body}`);
}

/** Vitest globalSetup (workerd-s3 project): one gateway for the run, its endpoint as inject("s3"). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.S3_TEST_ENDPOINT;
  if (external) {
    const need = (name: string) => {
      const value = process.env[name];
      if (!value) throw new Error(`S3_TEST_ENDPOINT is set: ${name} is required too`);
      return value;
    };
    project.provide("s3", {
      endpoint: external,
      region: process.env.S3_TEST_REGION ?? "us-east-1",
      bucket: need("S3_TEST_BUCKET"),
      accessKeyId: need("S3_TEST_ACCESS_KEY_ID"),
      secretAccessKey: need("S3_TEST_SECRET_ACCESS_KEY"),
    });
    return async () => undefined;
  }
  const server = await startRgw();
  const { directory: _directory, close, seconds: _seconds, ...info } = server;
  project.provide("s3", info);
  return close;
}
