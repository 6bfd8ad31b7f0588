/** Chromium on the bench page, with a disk-backed file set on its input (CDP takes a path). */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { launchChromium, launchPersistent } from "../test/support/chromium.ts";
import type { BenchPage } from "./pages/bench-page.ts";

export interface BenchBrowser {
  page: Page;
  setFile(path: string): Promise<void>;
  call<K extends keyof BenchPage>(name: K, ...args: Parameters<BenchPage[K]>): Promise<Awaited<ReturnType<BenchPage[K]>>>;
  close(): Promise<void>;
}

/**
 * `profile`: on a profile on disk, as a person's browser is. Without it the page runs in a fresh
 * context, which Chromium treats as a private window: IndexedDB and OPFS live in memory there, and
 * OPFS writes go through the browser process at ~15-30 MB/s (measured here), against 400-850 MB/s
 * to disk on a profile. Anything that measures OPFS must say which of the two it ran on.
 */
export async function openBenchPage(baseUrl: string, options: { profile?: boolean } = {}): Promise<BenchBrowser> {
  let page: Page;
  let close: () => Promise<void>;
  if (options.profile) {
    const dir = await mkdtemp(join(tmpdir(), "bench-profile-"));
    const context = await launchPersistent(dir);
    page = context.pages()[0] ?? (await context.newPage());
    close = async () => {
      await context.close();
      await rm(dir, { recursive: true, force: true });
    };
  } else {
    const browser = await launchChromium();
    page = await browser.newPage();
    close = () => browser.close();
  }
  page.setDefaultTimeout(15 * 60_000);
  await page.goto(`${baseUrl}/bench/pages/bench.html`);
  await page.waitForFunction(() => "bench" in globalThis);
  return {
    page,
    setFile: (path) => page.setInputFiles("[data-testid=bench-file]", path),
    call: (name, ...args) =>
      page.evaluate(([n, a]) => (globalThis as unknown as { bench: Record<string, (...x: unknown[]) => unknown> }).bench[n]?.(...a), [
        name,
        args,
      ] as const) as never,
    close,
  };
}
