/**
 * Serves a build (a generated wrangler.json whose `main` is the bundled worker) in local workerd
 * through Miniflare on host:port, persisting under `stateDir`; `vars` override the config's.
 * Resolves once workerd listens, to a function that shuts it down. `quiet`: no per-request log lines.
 */
export function serveBuild(options: {
  configPath: string;
  host: string;
  port: number;
  stateDir: string;
  vars?: Record<string, string>;
  quiet?: boolean;
}): Promise<() => Promise<void>>;
