import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser } from "playwright-core";
import { launchChromium } from "../support/chromium.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

test("the page served by the npm start stack shows the drop zone and the file input", async () => {
  const page = await browser.newPage();
  await page.goto(inject("baseUrl"));
  await expect(page.getByTestId("drop-zone").isVisible()).resolves.toBe(true);
  await expect(page.getByTestId("file-input").getAttribute("multiple")).resolves.not.toBeNull();
  const health = await page.evaluate(async () => (await fetch("/health")).status);
  expect(health).toBe(200);
});
