#!/usr/bin/env node
/**
 * The `edge-upload` command. From the installed package it runs the compiled CLI (dist/pkg, any
 * Node >= 22.12, no type stripping); in a checkout of the repository it runs the TypeScript
 * source (Node >= 22.18 strips types), so working on the CLI needs no build step.
 */
import { existsSync } from "node:fs";

const source = new URL("../client/cli.ts", import.meta.url);
const cli = existsSync(source) ? source : new URL("../dist/pkg/client/cli.js", import.meta.url);
const { main } = await import(cli.href);
process.exit(await main(process.argv.slice(2)));
