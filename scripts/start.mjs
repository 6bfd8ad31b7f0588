#!/usr/bin/env node
// `npm start`: the page and the worker in local workerd (R2 + Durable Objects persisted under
// .wrangler/state), on http://127.0.0.1:8787 unless PORT says otherwise.
import { spawn } from "node:child_process";
import { ensureGenerated } from "./generate.mjs";

await ensureGenerated();
const child = spawn(process.execPath, ["node_modules/vite/bin/vite.js", "dev", ...process.argv.slice(2)], {
  stdio: "inherit",
  env: process.env,
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
