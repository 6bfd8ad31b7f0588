/**
 * The `npm start` server (scripts/start.mjs: `vite build`, then `wrangler dev` on the build) as a
 * child process the tests control: its own port, state directory and build directory, in a
 * process group of its own so that `kill("SIGKILL")` takes down start.mjs, wrangler and both
 * workerd processes at once, the way a crashed host would, and `restart()` brings the same
 * server back on the same port and state without building again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer as createNetServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface ServerOptions {
  /** Loopback port; a free one when omitted. */
  port?: number;
  /** Where R2 and the Durable Objects persist (wrangler's --persist-to). */
  stateDir: string;
  /** Where the build goes; default `<stateDir>/build`. */
  outDir?: string;
  /** Extra environment for the server (worker vars such as UPLOAD_SECRET, see scripts/local-env.ts). */
  env?: Record<string, string>;
  /** Also build test/pages/*.html, the browser tests' harness pages. */
  testPages?: boolean;
  /** false: serve what `outDir` already holds (another server's build) instead of building. */
  build?: boolean;
  /** Give up waiting for /health after this long (a build plus wrangler's start-up on busy cores). */
  startTimeoutMs?: number;
}

export interface ServerProcess {
  baseUrl: string;
  port: number;
  /** Signals the whole process group and waits until every process of it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again (no build) on the same port and state, once /health answers. */
  restart(): Promise<void>;
  /** SIGTERM, then SIGKILL if the group is still there after 5 s. */
  stop(): Promise<void>;
  /** The server's recent output, for failure messages. */
  output(): string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether any process of the group is still alive (signal 0 only asks). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * Every live process group this test process started (servers here, browsers and drivers in
 * browsers.ts), killed if the test process exits without stopping them.
 */
export const liveGroups = new Set<number>();
const live = liveGroups;
process.once("exit", () => {
  for (const pgid of live) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const outDir = options.outDir ?? join(options.stateDir, "build");
  const baseUrl = `http://127.0.0.1:${port}`;
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  let lines: string[] = [];
  let child: ChildProcess | undefined;

  const launch = async (build: boolean) => {
    lines = [];
    const args = [
      join(root, "scripts/start.mjs"),
      "--out-dir",
      outDir,
      ...(options.testPages ? ["--with-test-pages"] : []),
      ...(build ? [] : ["--skip-build"]),
    ];
    const proc = spawn(process.execPath, args, {
      cwd: root,
      detached: true, // a process group of its own: kill(-pid) reaches wrangler and workerd too
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PORT: String(port),
        EDGE_UPLOAD_STATE_DIR: options.stateDir,
        ALLOW_ANONYMOUS: "true",
        CORS_ORIGINS: "*",
        // Each build gets its own Vite cache, so two test stacks building at once never share files.
        EDGE_UPLOAD_VITE_CACHE: join(outDir, "..", `vite-cache-${port}`),
        ...options.env,
      },
    });
    child = proc;
    live.add(proc.pid!);
    for (const stream of [proc.stdout, proc.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (text: string) => {
        lines.push(...text.split("\n"));
        if (lines.length > 200) lines = lines.slice(-200);
      });
    }
    let exited: string | undefined;
    proc.once("exit", (code, signal) => (exited = `server exited (${code ?? signal}) before /health answered`));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`${exited}:\n${lines.join("\n")}`);
      if (Date.now() > deadline) throw new Error(`no /health on ${baseUrl} after ${timeoutMs} ms:\n${lines.join("\n")}`);
      try {
        const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
  };

  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    const pgid = child?.pid;
    if (pgid === undefined || !live.has(pgid)) return;
    try {
      process.kill(-pgid, signal);
    } catch {
      // already gone
    }
    // Gone means every process of the group, and the port released: a restart must bind it.
    while (groupAlive(pgid) || !(await portFree(port))) await sleep(25);
    live.delete(pgid);
  };

  // A restart still starting when the test stops the server must not outlive it.
  let launching: Promise<void> = launch(options.build ?? true);
  await launching;
  return {
    baseUrl,
    port,
    kill,
    restart: () => (launching = launch(false)),
    async stop() {
      await launching.catch(() => {});
      const pgid = child?.pid;
      if (pgid === undefined || !live.has(pgid)) return;
      const term = kill("SIGTERM");
      const timer = setTimeout(() => {
        try {
          process.kill(-pgid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5_000);
      await term;
      clearTimeout(timer);
    },
    output: () => lines.join("\n"),
  };
}
