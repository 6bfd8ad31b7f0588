/**
 * The `npm start` stack for the bench: vite dev with the Cloudflare plugin (page + edge worker in
 * workerd, local R2 and Durable Objects) on a free loopback port, with a throw-away state
 * directory, as test/support/stack-setup.ts does for the tests. Also finds the workerd process
 * it spawned, so its CPU time and memory can be read from /proc.
 */
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { descendantsNamed, newWorkerd } from "./proc.ts";

export interface Stack {
  baseUrl: string;
  /**
   * The workerd process running the edge worker (and its local R2 and Durable Objects). Looked
   * up on each read: vite may restart workerd (a dependency optimised late), which /proc readers
   * must notice instead of reading a dead pid.
   */
  readonly workerdPid: number;
  /** workerd processes that are not the edge's (the baseline's). */
  exclude: Set<number>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export async function startStack(stateDir: string): Promise<Stack> {
  const port = await freePort();
  process.env.PORT = String(port);
  process.env.EDGE_UPLOAD_STATE_DIR = stateDir;
  process.env.ALLOW_ANONYMOUS = "true";
  process.env.CORS_ORIGINS = "*";
  const before = descendantsNamed(process.pid, "workerd");
  const { createServer } = await import("vite");
  const server = await createServer({
    configFile: "vite.config.ts",
    logLevel: process.env.BENCH_VITE_LOG === "info" ? "info" : "warn",
    // Its own dependency cache: node_modules/.vite is shared with the test runs of everyone
    // working in this tree, and a concurrent re-optimisation there breaks a running stack.
    cacheDir: join(stateDir, "..", "vite-cache"),
    // Scan the bench page up front too, so no dependency is discovered mid-run (which would
    // reload the page and restart workerd in the middle of a measurement).
    optimizeDeps: { entries: ["index.html", "bench/pages/bench.html"] },
    // Others edit this tree while the bench runs: a saved file must not hot-reload the page or
    // restart workerd mid-measurement. The bench measures the code as it was at start.
    server: { watch: null, hmr: false },
  });
  await server.listen();
  const baseUrl = `http://127.0.0.1:${port}`;
  const health = await fetch(`${baseUrl}/health`);
  if (!health.ok) throw new Error(`worker not healthy: ${health.status}`);
  const exclude = new Set(before);
  let pid = newWorkerd(before);
  return {
    baseUrl,
    exclude,
    get workerdPid() {
      const live = descendantsNamed(process.pid, "workerd").filter((p) => !exclude.has(p));
      if (!live.includes(pid)) {
        if (live.length !== 1) throw new Error(`edge workerd ${pid} is gone and no single successor was found`);
        pid = live[0] as number;
      }
      return pid;
    },
    close: () => server.close(),
  };
}
