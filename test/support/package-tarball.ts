/**
 * The package as a consumer installs it: `npm pack` of this checkout (its prepack builds
 * dist/pkg), made once per test run and shared by the test files that install it
 * (test/e2e/package-consumer and host-worker-example), and an offline install of it into a
 * project in a temp directory.
 *
 * Once per run: the e2e project's files share its state directory (inject("stateDir")); the
 * first file to ask creates a lock directory there and packs, the others wait for its marker.
 * Packing twice at once would also race on dist/pkg, which prepack rebuilds from scratch.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const repoModules = join(repo, "node_modules");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The tarball's path, packing it if no test file of this run has yet. */
export async function packedTarball(stateDir: string, timeoutMs = 240_000): Promise<string> {
  const dir = join(stateDir, "package");
  const marker = join(dir, "packed.json");
  let mine = false;
  try {
    await mkdir(join(stateDir, "package.lock"));
    mine = true;
  } catch {
    // another file of this run packs (or has packed)
  }
  if (mine) {
    await mkdir(dir, { recursive: true });
    try {
      const { stdout } = await run("npm", ["pack", "--pack-destination", dir, "--json"], { cwd: repo, maxBuffer: 64 * 1024 * 1024 });
      // prepack prints its own line before npm's JSON.
      const [packed] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as { filename: string }[];
      if (!packed) throw new Error(`npm pack reported no tarball:\n${stdout}`);
      await writeFile(marker, JSON.stringify({ tarball: join(dir, packed.filename) }));
    } catch (error) {
      await writeFile(marker, JSON.stringify({ error: String(error) }));
      throw error;
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(marker, "utf8").catch(() => undefined);
    if (text) {
      const result = JSON.parse(text) as { tarball?: string; error?: string };
      if (result.tarball) return result.tarball;
      throw new Error(`npm pack failed in another test file: ${result.error}`);
    }
    if (Date.now() > deadline) throw new Error(`no tarball in ${dir} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/**
 * Installs `tarball` as `edge-upload` into the project at `dir`, offline: every other dependency
 * the project names, and the package's own, are linked from this repo's node_modules (no registry,
 * a few seconds). `dependencies`/`devDependencies` of the project's package.json are kept by name;
 * their versions become those links.
 */
export async function installTarball(dir: string, tarball: string): Promise<void> {
  const path = join(dir, "package.json");
  const project = JSON.parse(await readFile(path, "utf8")) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  const ours = JSON.parse(await readFile(join(repo, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  const link = (names: string[]) => Object.fromEntries(names.filter((n) => n !== "edge-upload").map((name) => [name, `file:${join(repoModules, name)}`]));
  project.dependencies = { ...link(Object.keys(ours.dependencies)), ...link(Object.keys(project.dependencies ?? {})), "edge-upload": `file:${tarball}` };
  project.devDependencies = link(Object.keys(project.devDependencies ?? {}));
  await writeFile(path, JSON.stringify(project, null, 2));
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
}
