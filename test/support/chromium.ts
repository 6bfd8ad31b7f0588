/**
 * Launching Debian's Chromium through playwright-core (Playwright's own browser download cannot
 * work on these machines). A missing browser is an error that says how to fix it, never a skip.
 */
import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type LaunchOptions } from "playwright-core";

/** Flags that keep headless Chromium off the network and quiet on a locked-down machine. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(path)) {
    throw new Error(
      `No Chromium at ${path}. Install one (Debian/Ubuntu: \`sudo apt-get update && sudo apt-get install -y chromium\`) ` +
        "or point CHROMIUM_PATH at a Chromium/Chrome binary.",
    );
  }
  return path;
}

export function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS, ...options });
}

/** A persistent profile (IndexedDB and OPFS survive a killed browser started again on it). */
export function launchPersistent(userDataDir: string, options: LaunchOptions = {}): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
    ...options,
  });
}
