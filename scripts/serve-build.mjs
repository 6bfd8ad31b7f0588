/**
 * Serves a `vite build` output (the worker with its generated wrangler.json, and the page) in
 * local workerd through Miniflare, with nothing in front of it: workerd itself listens on the
 * port. Used by `npm start` (scripts/start.mjs).
 *
 * Why Miniflare and not `wrangler dev`: both `vite dev` and `wrangler dev` put a proxy in front
 * of the worker that forwards each request with a fetch to another workerd. When the worker
 * answers before reading a request body (a 404, 409, 413 or 415 to a PATCH), that fetch fails and
 * the proxy answers 500 (`vite dev`: "fetch failed", also on the next request of the connection
 * and under plain load; `wrangler dev`: "Network connection lost."). Measured with
 * test/e2e/load.e2e.test.ts: 3-6 and 3-10 such 500s out of 76 answers; none here.
 *
 * Miniflare and the wrangler config reader are wrangler's own copies, so the options match
 * (Miniflare 5 takes them in its v4 shape through its own convertV4MiniflareOptions).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";

const require = createRequire(import.meta.url);
const wranglerMain = require.resolve("wrangler");
const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = createRequire(wranglerMain)("miniflare");

/**
 * Miniflare's options for the worker of `configPath`, from wrangler's config reader. Loading
 * wrangler costs ~1 s of every start, so the options are kept beside the config (plain JSON)
 * and read from there while the config is the same file: a restart (`--skip-build`, the
 * server-kill test restarts several times) skips wrangler.
 */
function workerOptionsOf(configPath) {
  const cachePath = join(dirname(configPath), ".miniflare-options.json");
  const { mtimeMs, size } = statSync(configPath);
  const stamp = `${mtimeMs}:${size}`;
  try {
    const cached = JSON.parse(readFileSync(cachePath, "utf8"));
    if (cached.stamp === stamp) return cached;
  } catch {
    // none yet, or unreadable: ask wrangler
  }
  const { unstable_getMiniflareWorkerOptions } = require(wranglerMain);
  const { workerOptions, main } = unstable_getMiniflareWorkerOptions(configPath);
  const { modulesRules: _rules, ...options } = workerOptions;
  const fresh = { stamp, options, main };
  writeFileSync(cachePath, JSON.stringify(fresh));
  return fresh;
}

/** Module types by extension, as wrangler's default module rules have them. */
const MODULE_TYPES = { ".js": "ESModule", ".mjs": "ESModule", ".wasm": "CompiledWasm", ".txt": "Text", ".html": "Text", ".sql": "Text", ".bin": "Data" };

/**
 * The built worker's modules, entry first: Miniflare takes them as a list (the build keeps
 * `no_bundle`, so nothing may be bundled again). Source maps and the config are not modules.
 */
function builtModules(main) {
  const rootPath = dirname(main);
  const entry = relative(rootPath, main);
  const rest = readdirSync(rootPath, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(rootPath, join(d.parentPath, d.name)))
    .filter((path) => path !== entry && !path.startsWith(".") && MODULE_TYPES[path.slice(path.lastIndexOf("."))])
    .map((path) => ({ type: MODULE_TYPES[path.slice(path.lastIndexOf("."))], path }));
  return { rootPath, modules: [{ type: "ESModule", path: entry }, ...rest] };
}

/**
 * Starts the worker of `configPath` (a generated dist/<name>/wrangler.json) on host:port with
 * R2 and Durable Objects persisted under `stateDir` (the `v3` layout `wrangler dev --persist-to`
 * and the Vite plugin use, so all three read the same uploads). `vars` override the config's;
 * `quiet` keeps workerd's per-request log lines out (warnings and errors still show).
 * Resolves once workerd listens; returns a function that shuts it down.
 */
export async function serveBuild({ configPath, host, port, stateDir, vars, quiet = false }) {
  const { options, main } = workerOptionsOf(configPath);
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host,
      port,
      log: new Log(quiet ? LogLevel.WARN : LogLevel.INFO),
      // The placeholder `Request.cf`, not one fetched from workers.cloudflare.com: the worker reads
      // none of it, and a local server has no business calling out (offline it only warns).
      cf: false,
      resourcePersistencePath: join(stateDir, "v3"),
      // `curl http://127.0.0.1:8787/cdn-cgi/local/scheduled` runs the cron handler (the hourly
      // purge of expired uploads) on demand; nothing fires crons locally.
      unsafeTriggerHandlers: true,
      workers: [
        {
          ...options,
          // Wrangler's reader leaves the name out, and Durable Objects persist under
          // <worker name>-<class>: without it they would live apart from what `vite dev` and
          // `wrangler dev` stored (edge-upload-UploadObject), and those uploads would be 404.
          name: options.name ?? JSON.parse(readFileSync(configPath, "utf8")).name,
          bindings: { ...options.bindings, ...vars },
          ...builtModules(main),
        },
      ],
    }),
  );
  await mf.ready;
  return () => mf.dispose();
}
