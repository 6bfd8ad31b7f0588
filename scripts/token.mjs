#!/usr/bin/env node
// `npm run token -- <namespace> [--ttl 24h]`: prints a bearer token for the edge (last line).
// The secret comes from UPLOAD_SECRET in the environment, else from .dev.vars (wrangler's local
// secrets file). Signing uses edge/auth.ts itself (Node strips its types), so the format cannot
// drift from what the worker verifies.
import { readFile } from "node:fs/promises";
import { signToken } from "../edge/http/auth.ts";

const NAMESPACE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const UNITS = { s: 1, m: 60, h: 3600, d: 86400 };

function fail(message) {
  console.error(`token: ${message}`);
  console.error("usage: npm run token -- <namespace> [--ttl 24h]   (ttl units: s, m, h, d)");
  process.exit(2);
}

async function secretFromDevVars() {
  try {
    const text = await readFile(new URL("../.dev.vars", import.meta.url), "utf8");
    for (const line of text.split(/\r?\n/)) {
      const m = /^\s*UPLOAD_SECRET\s*=\s*(.*?)\s*$/.exec(line);
      if (m) return m[1].replace(/^(["'])(.*)\1$/, "$2");
    }
  } catch {
    // no .dev.vars: fall through
  }
  return undefined;
}

const args = process.argv.slice(2);
let ttl = "24h";
const positional = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--ttl") ttl = args[++i] ?? fail("--ttl needs a value");
  else if (args[i].startsWith("--ttl=")) ttl = args[i].slice(6);
  else positional.push(args[i]);
}
const [namespace] = positional;
if (!namespace || positional.length > 1) fail("give exactly one namespace");
if (namespace.length > 255 || !NAMESPACE.test(namespace)) {
  fail(`"${namespace}" is not a valid namespace (Docker repository name: lowercase a-z0-9, separators . _ -, / between parts)`);
}
const m = /^(\d+)([smhd]?)$/.exec(ttl);
if (!m || Number(m[1]) <= 0) fail(`bad --ttl "${ttl}"`);
const seconds = Number(m[1]) * UNITS[m[2] || "s"];

const secret = process.env.UPLOAD_SECRET || (await secretFromDevVars());
if (!secret) fail("no UPLOAD_SECRET in the environment or in .dev.vars");

const exp = Math.floor(Date.now() / 1000) + seconds;
console.error(`namespace ${namespace}, expires ${new Date(exp * 1000).toISOString()}`);
console.log(await signToken(secret, { ns: namespace, exp }));
