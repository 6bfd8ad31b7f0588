/**
 * workerd processes for the server-side items, configured by hand (Miniflare's own config
 * serialiser, Miniflare's own R2 simulator), so that the R2 simulator runs in a process of its
 * own: process A serves the local bucket on a loopback socket, process B runs the workers, whose
 * `r2Bucket` binding designates an `external` service at A. That is how workerd reaches R2 in
 * production too (the binding speaks HTTP to a storage service), and it keeps the simulator's
 * ~35 ms of CPU per MiB stored out of the edge's process: B's CPU time is the edge's own.
 *
 * Why not Miniflare: it always runs the simulator in the same workerd (and thread) as the workers
 * that use the bucket, so the edge measured its CPU mixed with the simulator's, and both shared
 * one core. Miniflare's shared-storage mode can split them too, but it routes every R2 call
 * through a debug-port proxy that costs ~4 ms/MiB on each side (measured here).
 *
 * This depends on Miniflare internals (the simulator's worker files and their bindings); the
 * versions are pinned by package-lock.json, and the bench's smoke test (npm test) starts it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { serializeConfig, type Service, type Worker_Binding, type Worker_Module } from "miniflare";

type Config = Parameters<typeof serializeConfig>[0];
type ServiceConfig = Service;
export type WorkerModule = Worker_Module;
export type WorkerBinding = Worker_Binding;

const require = createRequire(import.meta.url);
const WORKERD: string = (require("workerd") as { default?: string }).default ?? (require("workerd") as string);
const SIMULATOR_DIR = join(require.resolve("miniflare"), "..", "workers");
const simulatorModule = (path: string) => readFileSync(join(SIMULATOR_DIR, path), "utf8");

export interface WorkerdProcess {
  pid: number;
  /** Port of each socket, by socket name. */
  ports: Record<string, number>;
  close(): Promise<void>;
}

/** Starts `workerd serve` on `config`; resolves once every socket named listens (its control fd says so). */
export function runWorkerd(config: Config, sockets: string[]): Promise<WorkerdProcess> {
  const child: ChildProcess = spawn(WORKERD, ["serve", "--binary", "--experimental", "--control-fd=3", "-"], { stdio: ["pipe", "inherit", "inherit", "pipe"] });
  child.stdin?.end(serializeConfig(config));
  const ports: Record<string, number> = {};
  const close = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill();
    });
  return new Promise((resolve, reject) => {
    let buffered = "";
    child.stdio[3]?.on("data", (data: Buffer) => {
      buffered += data.toString();
      for (let i; (i = buffered.indexOf("\n")) >= 0; buffered = buffered.slice(i + 1)) {
        const message = JSON.parse(buffered.slice(0, i)) as { event?: string; socket?: string; port?: number };
        if (message.event === "listen" && message.socket && message.port) ports[message.socket] = message.port;
      }
      if (sockets.every((s) => ports[s]) && child.pid) resolve({ pid: child.pid, ports, close });
    });
    child.once("exit", (code) => reject(new Error(`workerd exited with ${code} before listening`)));
  });
}

/** Process A: Miniflare's R2 simulator for one bucket, persisted under `dir`, on 127.0.0.1. */
export async function startR2Simulator(dir: string, bucket: string): Promise<{ pid: number; address: string; close(): Promise<void> }> {
  mkdirSync(dir, { recursive: true });
  const a = await runWorkerd(
    {
      services: [
        {
          name: "r2-entry",
          worker: {
            compatibilityDate: "2023-07-24",
            modules: [{ name: "object-entry.worker.js", esModule: simulatorModule("shared/object-entry.worker.js") }],
            bindings: [
              { name: "MINIFLARE_NAMESPACE", text: bucket },
              { name: "MINIFLARE_OBJECT", durableObjectNamespace: { serviceName: "r2-bucket", className: "R2BucketObject" } },
            ],
          },
        },
        {
          name: "r2-bucket",
          worker: {
            compatibilityDate: "2023-07-24",
            compatibilityFlags: ["nodejs_compat", "experimental"],
            modules: [{ name: "bucket.worker.js", esModule: simulatorModule("r2/bucket.worker.js") }],
            durableObjectNamespaces: [{ className: "R2BucketObject", uniqueKey: "miniflare-R2BucketObject", enableSql: true }],
            durableObjectStorage: { localDisk: "r2-disk" },
            bindings: [{ name: "MINIFLARE_BLOBS", service: { name: "r2-disk" } }],
          },
        },
        { name: "r2-disk", disk: { path: dir, writable: true } },
      ],
      sockets: [{ name: "r2", address: "127.0.0.1:0", http: {}, service: { name: "r2-entry" } }],
      extensions: [
        {
          modules: [
            { name: "miniflare:shared", esModule: simulatorModule("shared/index.worker.js") },
            { name: "miniflare:zod", esModule: simulatorModule("shared/zod.worker.js") },
          ],
        },
      ],
    },
    ["r2"],
  );
  return { pid: a.pid, address: `127.0.0.1:${a.ports.r2}`, close: a.close };
}

export interface WorkerSpec {
  name: string;
  compatibilityDate: string;
  compatibilityFlags?: string[];
  modules: WorkerModule[];
  bindings: WorkerBinding[];
  /** Durable Object classes the worker exports (SQLite-backed, stored under `doDir`). */
  durableObjects?: string[];
  /**
   * Let the worker's fetch() reach loopback and private addresses (an S3 server on 127.0.0.1):
   * workerd's default outbound network allows public addresses only.
   */
  loopbackOutbound?: boolean;
}

/**
 * Process B: the workers, one loopback socket each (named after the worker); each gets `BUCKET`,
 * an R2 binding served by the simulator at `r2Address`.
 */
export async function startWorkers(
  workers: WorkerSpec[],
  r2Address: string,
  doDir: string,
): Promise<{ pid: number; urls: Record<string, string>; close(): Promise<void> }> {
  mkdirSync(doDir, { recursive: true });
  const services: ServiceConfig[] = [
    { name: "r2-external", external: { address: r2Address, http: {} } },
    { name: "do-disk", disk: { path: doDir, writable: true } },
    { name: "loopback-net", network: { allow: ["public", "private", "local"] } },
  ];
  for (const w of workers) {
    services.push({
      name: w.name,
      worker: {
        compatibilityDate: w.compatibilityDate,
        compatibilityFlags: w.compatibilityFlags ?? [],
        modules: w.modules,
        ...(w.durableObjects?.length
          ? {
              durableObjectNamespaces: w.durableObjects.map((className) => ({ className, uniqueKey: `${w.name}-${className}`, enableSql: true })),
              durableObjectStorage: { localDisk: "do-disk" },
            }
          : {}),
        bindings: [{ name: "BUCKET", r2Bucket: { name: "r2-external" } }, ...w.bindings],
        ...(w.loopbackOutbound ? { globalOutbound: { name: "loopback-net" } } : {}),
      },
    });
  }
  const b = await runWorkerd(
    { services, sockets: workers.map((w) => ({ name: w.name, address: "127.0.0.1:0", http: {}, service: { name: w.name } })) },
    workers.map((w) => w.name),
  );
  return { pid: b.pid, urls: Object.fromEntries(workers.map((w) => [w.name, `http://127.0.0.1:${b.ports[w.name]}`])), close: b.close };
}
