#!/usr/bin/env node
// `npm run bench`: the harness is TypeScript (bench/main.ts), run by Node's type stripping.
import { requireNode } from "../scripts/generate.mjs";

requireNode();
const { main } = await import("./main.ts");
process.exit(await main(process.argv.slice(2)));
