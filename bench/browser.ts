/** Chromium on the bench page, with a disk-backed file set on its input (CDP takes a path). */
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../test/support/chromium.ts";
import type { BenchPage } from "./pages/bench-page.ts";

export interface BenchBrowser {
  page: Page;
  setFile(path: string): Promise<void>;
  call<K extends keyof BenchPage>(name: K, ...args: Parameters<BenchPage[K]>): Promise<Awaited<ReturnType<BenchPage[K]>>>;
  close(): Promise<void>;
}

export async function openBenchPage(baseUrl: string): Promise<BenchBrowser> {
  const browser: Browser = await launchChromium();
  const page = await browser.newPage();
  page.setDefaultTimeout(15 * 60_000);
  await page.goto(`${baseUrl}/bench/pages/bench.html`);
  await page.waitForFunction(() => "bench" in globalThis);
  return {
    page,
    setFile: (path) => page.setInputFiles("[data-testid=bench-file]", path),
    call: (name, ...args) =>
      page.evaluate(
        ([n, a]) => (globalThis as unknown as { bench: Record<string, (...x: unknown[]) => unknown> }).bench[n]?.(...a),
        [name, args] as const,
      ) as never,
    close: () => browser.close(),
  };
}
