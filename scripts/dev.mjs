#!/usr/bin/env node
// `npm run dev`: `vite dev` for working on the page (hot reload; the worker runs in workerd
// behind Vite's dev proxy, with the same vars, port and .wrangler/state as `npm start`).
// Not for uploads under load: that proxy answers some requests `500 fetch failed` (see
// scripts/start.mjs); `npm start` serves the build without it.
import { spawn } from "node:child_process";
import { ensureGenerated } from "./generate.mjs";

await ensureGenerated();
const child = spawn(process.execPath, ["node_modules/vite/bin/vite.js", "dev", ...process.argv.slice(2)], {
  stdio: "inherit",
  env: process.env,
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
