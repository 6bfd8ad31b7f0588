import { cloudflare } from "@cloudflare/vite-plugin";
import { readdirSync } from "node:fs";
import { defineConfig } from "vite";
import { localWorkerVars } from "./scripts/local-env.ts";

/**
 * One Vite config for `vite build` (what `npm start` serves with `wrangler dev` and what
 * `wrangler deploy` ships) and for `npm run dev` (vite dev: the page and the worker in real
 * workerd with local R2 and Durable Objects persisted under .wrangler/state, for working on the
 * page). The worker's vars for local runs come from the environment (PORT, UPLOAD_SECRET,
 * ALLOW_ANONYMOUS, CORS_ORIGINS); see scripts/local-env.ts. `npm start` passes them to
 * `wrangler dev` itself (scripts/start.mjs): a build never carries them.
 */
export default defineConfig(({ command }) => ({
  server: {
    host: "127.0.0.1",
    port: Number(process.env.PORT ?? 8787),
    strictPort: true,
    // The worker answers CORS itself (edge/cors.ts). Vite's own CORS middleware would answer every
    // OPTIONS that carries an Origin, swallowing tus discovery and our preflight headers.
    cors: false,
  },
  preview: { host: "127.0.0.1", port: Number(process.env.PORT ?? 8787) },
  worker: { format: "es" },
  // The browser tests' harness pages, built only for the tests' servers (scripts/start.mjs
  // --with-test-pages): a deployed page has no business shipping them.
  ...(process.env.EDGE_UPLOAD_TEST_PAGES === "1" ? { environments: { client: { build: { rollupOptions: { input: ["index.html", ...testPages()] } } } } } : {}),
  // Every dependency the page, the hasher worker and the test harness pages import, optimised at
  // start-up: a dependency discovered late makes Vite re-optimise and reload every open page,
  // which would cut a running upload (and a browser test) short.
  optimizeDeps: {
    entries: ["index.html", "test/pages/*.html"],
    include: ["hash-wasm", "idb-keyval", "tus-js-client"],
  },
  // Test stacks run side by side; each gets its own dependency cache so one's re-optimisation
  // never touches another's files (test/support/stack-setup.ts sets this).
  ...(process.env.EDGE_UPLOAD_VITE_CACHE ? { cacheDir: process.env.EDGE_UPLOAD_VITE_CACHE } : {}),
  plugins: [
    cloudflare({
      configPath: "./wrangler.jsonc",
      // The dev-only vars never reach a deployed worker: `vite build` keeps wrangler.jsonc's.
      config: command === "serve" ? { vars: localWorkerVars(process.env) } : {},
      persistState: process.env.EDGE_UPLOAD_STATE_DIR ? { path: process.env.EDGE_UPLOAD_STATE_DIR } : true,
      inspectorPort: false,
    }),
  ],
}));

/** Every harness page under test/pages/, so a new one needs no edit here. */
function testPages(): string[] {
  return readdirSync("test/pages")
    .filter((name) => name.endsWith(".html"))
    .map((name) => `test/pages/${name}`);
}
