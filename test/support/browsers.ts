/**
 * One small driver layer over three browser engines, so a page test is written once and runs in
 * Chromium, Firefox and WebKit (test/browser/engines.browser.test.ts). Every engine runs on a
 * profile directory the test owns, in a process group of its own, so `killHard()` is a real
 * crash (SIGKILL to every process of the browser at once) and `relaunch()` starts the same
 * browser on the same profile, with whatever storage survived.
 *
 * How each engine is driven, and what it took (versions measured with Debian 12's packages,
 * 2026-12; docs/page.md "Engines" says the same for readers of the page's docs):
 *
 * - chromium (Debian's chromium 156) through playwright-core 1.65 over CDP. Started by hand with
 *   --remote-debugging-port=0 rather than by launchPersistentContext, which hides the pid.
 *   Quirk: Playwright's setInputFiles on a browser reached with connectOverCDP takes it for a
 *   remote one and hangs streaming the files; CDP's DOM.setFileInputFiles does it directly.
 * - firefox (Debian's firefox-esr 153 ESR) through puppeteer-core 25, `browser: "firefox"`, which
 *   speaks WebDriver BiDi (no CDP in Firefox any more). Quirks: without the prefs
 *   dom.storageManager.prompt.testing(.allow), `navigator.storage.persist()` waits for a prompt
 *   no one answers and never settles; puppeteer writes its prefs into the profile's user.js on
 *   every launch, so a relaunch on the same profile gets them again.
 * - webkit (WebKitGTK 2.50, Safari's engine) through selenium-webdriver 4 and WebKitWebDriver
 *   (webkit2gtk-driver), headed under an Xvfb of its own (WebKitGTK has no headless mode).
 *   Quirks: stock `MiniBrowser --automation` keeps all storage in memory, so the browser is
 *   test/support/webkit-launcher.py, a few lines on the WebKit2 GObject bindings with a
 *   persistent WebsiteDataManager (and the Storage API and OPFS switched on, as Safari has
 *   them); it needs Debian's /usr/bin/python3 (python3-gi). File inputs take paths through
 *   sendKeys, which appends on a `multiple` input (the page clears its input after each change,
 *   so nothing piles up). The browser and its web and network processes stay in the process
 *   group of the WebKitWebDriver we start, so killHard() kills that group (the driver with it;
 *   a relaunch starts a fresh driver and Xvfb).
 *
 * Selectors given to this layer are plain CSS, matched in the document and then in every open
 * shadow root below it (deepest last): the page's hooks work whether they sit in index.html or
 * inside an `<edge-upload>` element's shadow root.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, type Browser as PlaywrightBrowser, type Page as PlaywrightPage, chromium as playwrightChromium } from "playwright-core";
import puppeteer, { type Page as PuppeteerPage } from "puppeteer-core";
import { Builder, type WebDriver, type WebElement } from "selenium-webdriver";
import { CHROMIUM_ARGS, chromiumPath } from "./chromium.ts";
import { freePort, groupAlive, liveGroups } from "./server-process.ts";

export type Engine = "chromium" | "firefox" | "webkit";
export const ENGINES: readonly Engine[] = ["chromium", "firefox", "webkit"];

/** Finds `selector` in the document or in any open shadow root; runs in the page. */
export type Find = (selector: string) => Element | null;

export interface EngineBrowser {
  engine: Engine;
  /** The browser's own name and version, for logs and failure messages. */
  version: string;
  /** Navigates the one tab and waits for the load event. */
  open(url: string): Promise<void>;
  /**
   * Runs `fn(arg, find)` in the page and returns its (awaited, JSON-serialisable) result. `fn`
   * is sent as source text: it may use only its parameters and the page's globals.
   */
  evaluate<T, A = undefined>(fn: (arg: A, find: Find) => T | Promise<T>, arg?: A): Promise<T>;
  /** Polls `fn` in the page every 100 ms until it returns true; rejects after `timeout` ms. */
  waitFor<A>(fn: (arg: A, find: Find) => boolean, arg: A, timeout?: number): Promise<void>;
  /** Gives files (paths on this machine) to an `<input type=file>`, as a person choosing them. */
  setFiles(selector: string, paths: string[]): Promise<void>;
  click(selector: string): Promise<void>;
  /** An attribute of the first element matching `selector`; null when absent or no such element. */
  attribute(selector: string, name: string): Promise<string | null>;
  /** SIGKILL to the browser's process group, and waits until every process of it is gone. */
  killHard(): Promise<void>;
  /** The same engine on the same profile (after killHard or close). */
  relaunch(): Promise<EngineBrowser>;
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** Where the browser keeps its storage; it survives killHard for relaunch(). */
  profileDir: string;
}

/** Source of the page-side `find` (see the header: document first, then open shadow roots). */
const FIND_SOURCE = `(selector) => {
  const walk = (root) => {
    const hit = root.querySelector(selector);
    if (hit) return hit;
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) {
        const deep = walk(el.shadowRoot);
        if (deep) return deep;
      }
    }
    return null;
  };
  return walk(document);
}`;

/** An expression (for drivers that evaluate strings) for the element `find(selector)` finds, or null. */
export function findExpression(selector: string): string {
  return `(${FIND_SOURCE})(${JSON.stringify(selector)})`;
}

/** An expression (for drivers that evaluate strings) calling `fn(arg, find)`. */
function callExpression(fn: (...args: never[]) => unknown, arg: unknown): string {
  return `(${fn.toString()})(${JSON.stringify(arg ?? null)}, ${FIND_SOURCE})`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** SIGKILL to a process group, then wait until the kernel has none of it left. */
async function killGroup(pgid: number): Promise<void> {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + 10_000;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) throw new Error(`process group ${pgid} still alive 10 s after SIGKILL`);
    await sleep(25);
  }
}

/** Every browser and driver group still running: killed if the test process exits without closing them. */
const live = liveGroups;

/** The engine-neutral parts, given the few primitives each driver has to supply. */
function common(
  engine: Engine,
  version: string,
  options: LaunchOptions,
  driver: {
    open(url: string): Promise<void>;
    evaluateExpression(expression: string): Promise<unknown>;
    setFiles(selector: string, paths: string[]): Promise<void>;
    pgids: number[];
  },
): EngineBrowser {
  for (const pgid of driver.pgids) live.add(pgid);
  const self: EngineBrowser = {
    engine,
    version,
    open: (url) => driver.open(url),
    async evaluate<T, A>(fn: (arg: A, find: Find) => T | Promise<T>, arg?: A) {
      return (await driver.evaluateExpression(callExpression(fn, arg))) as T;
    },
    async waitFor<A>(fn: (arg: A, find: Find) => boolean, arg: A, timeout = 120_000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        if ((await self.evaluate(fn, arg)) === true) return;
        if (Date.now() > deadline) throw new Error(`${engine}: waited ${timeout} ms for ${fn.toString()} with ${JSON.stringify(arg)}`);
        await sleep(100);
      }
    },
    setFiles: (selector, paths) => driver.setFiles(selector, paths),
    async click(selector) {
      const found = await self.evaluate((sel, find) => {
        const el = find(sel);
        if (!(el instanceof HTMLElement)) return false;
        el.click();
        return true;
      }, selector);
      if (!found) throw new Error(`${engine}: nothing to click at ${selector}`);
    },
    attribute: (selector, name) => self.evaluate(({ selector, name }, find) => find(selector)?.getAttribute(name) ?? null, { selector, name }),
    async killHard() {
      for (const pgid of driver.pgids) {
        await killGroup(pgid);
        live.delete(pgid);
      }
    },
    relaunch: () => launch(engine, options),
    // No polite shutdown: it costs seconds (Firefox's took 3-7 s on a loaded machine) and buys
    // nothing, since the tests throw their profiles away. Killing the group also takes the
    // helper processes a polite close can leave behind.
    close: () => self.killHard(),
  };
  return self;
}

export async function launch(engine: Engine, options: LaunchOptions): Promise<EngineBrowser> {
  await mkdir(options.profileDir, { recursive: true });
  switch (engine) {
    case "chromium":
      return launchChromium(options);
    case "firefox":
      return launchFirefox(options);
    case "webkit":
      return launchWebKit(options);
  }
}

// ---------------------------------------------------------------------------------------------
// Chromium: playwright-core over CDP

/** A Chromium of our own on `profileDir`, reached over CDP: its pid is its process group's. */
export interface SpawnedChromium {
  pid: number;
  browser: PlaywrightBrowser;
  /** The profile's default context (persistent: what survives a kill survives here). */
  context: BrowserContext;
  /** Resolves when the browser process has exited. */
  exited: Promise<unknown>;
}

/**
 * Starts Chromium on a persistent profile with --remote-debugging-port=0, in a process group of
 * its own, and connects over CDP (launchPersistentContext would hide the pid: context.browser()
 * is null for persistent contexts). The engines layer and page-helpers' launchKillable share it.
 */
export async function spawnChromium(profileDir: string, viewport = { width: 1000, height: 800 }): Promise<SpawnedChromium> {
  const child: ChildProcess = spawn(
    chromiumPath(),
    [
      ...CHROMIUM_ARGS,
      "--headless=new",
      "--hide-scrollbars",
      `--user-data-dir=${profileDir}`,
      "--remote-debugging-port=0",
      `--window-size=${viewport.width},${viewport.height}`,
      "about:blank",
    ],
    { detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error("Chromium did not start");
  const exited = once(child, "exit");
  try {
    return { pid, exited, ...(await connectToSpawned(child)) };
  } catch (error) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
    throw error;
  }
}

/** Waits for the DevTools line on the browser's stderr and connects Playwright there. */
async function connectToSpawned(child: ChildProcess): Promise<{ browser: PlaywrightBrowser; context: BrowserContext }> {
  const wsEndpoint = await new Promise<string>((resolve, reject) => {
    let log = "";
    const onData = (data: Buffer) => {
      log += data.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(log);
      if (m?.[1]) {
        child.stderr?.off("data", onData);
        child.stderr?.resume(); // keep draining so Chromium never blocks on a full pipe
        resolve(m[1]);
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`Chromium exited (${code}) before listening:\n${log}`)));
  });
  const browser = await playwrightChromium.connectOverCDP(wsEndpoint);
  const context = browser.contexts()[0];
  if (!context) throw new Error("no default context over CDP");
  return { browser, context };
}

async function launchChromium(options: LaunchOptions): Promise<EngineBrowser> {
  const { pid, browser, context } = await spawnChromium(options.profileDir);
  live.add(pid);
  const page: PlaywrightPage = context.pages()[0] ?? (await context.newPage());
  return common("chromium", `Chromium ${browser.version()}`, options, {
    pgids: [pid],
    async open(url) {
      await page.goto(url, { waitUntil: "load" });
    },
    evaluateExpression: (expression) => page.evaluate(expression),
    // Straight through CDP: Playwright's own setInputFiles, on a browser it reached with
    // connectOverCDP, takes it for a remote one and waits forever trying to stream the files.
    async setFiles(selector, paths) {
      const cdp = await context.newCDPSession(page);
      try {
        const { result } = await cdp.send("Runtime.evaluate", { expression: findExpression(selector) });
        if (!result.objectId || result.subtype !== "node") throw new Error(`chromium: no file input at ${selector}`);
        await cdp.send("DOM.setFileInputFiles", { objectId: result.objectId, files: paths });
      } finally {
        await cdp.detach();
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Firefox: puppeteer-core over WebDriver BiDi

export function firefoxPath(): string {
  const path = process.env.FIREFOX_PATH ?? "/usr/bin/firefox-esr";
  if (!existsSync(path)) {
    throw new Error(
      `No Firefox at ${path}. Install one (Debian: \`sudo apt-get update && sudo apt-get install -y firefox-esr\`) ` +
        "or point FIREFOX_PATH at a Firefox binary.",
    );
  }
  return path;
}

async function launchFirefox(options: LaunchOptions): Promise<EngineBrowser> {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: firefoxPath(),
    headless: true,
    userDataDir: options.profileDir,
    // Puppeteer's handlers would close Firefox when the test process gets a signal; ours do.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    extraPrefsFirefox: {
      // Without these, navigator.storage.persist() waits on a permission prompt forever.
      "dom.storageManager.prompt.testing": true,
      "dom.storageManager.prompt.testing.allow": true,
    },
  });
  // @puppeteer/browsers spawns the browser detached on Linux: its pid is its process group's.
  const pid = browser.process()?.pid;
  if (pid === undefined) throw new Error("Firefox started without a pid");
  const page: PuppeteerPage = (await browser.pages())[0] ?? (await browser.newPage());
  await page.setViewport({ width: 1000, height: 800 });
  return common("firefox", await browser.version(), options, {
    pgids: [pid],
    async open(url) {
      await page.goto(url, { waitUntil: "load" });
    },
    evaluateExpression: (expression) => page.evaluate(expression),
    async setFiles(selector, paths) {
      const handle = await page.evaluateHandle(findExpression(selector));
      const input = handle.asElement() as import("puppeteer-core").ElementHandle<HTMLInputElement> | null;
      if (!input) throw new Error(`firefox: no file input at ${selector}`);
      await input.uploadFile(...paths);
      await input.dispose();
    },
  });
}

// ---------------------------------------------------------------------------------------------
// WebKit: selenium-webdriver + WebKitWebDriver, under Xvfb, on test/support/webkit-launcher.py

const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), "webkit-launcher.py");

/** WebKitWebDriver's path, once it, Xvfb and the launcher's GObject bindings are all there. */
export function webkitDriverPath(): string {
  const path = process.env.WEBKIT_WEBDRIVER_PATH ?? "/usr/bin/WebKitWebDriver";
  const gi = spawnSync("/usr/bin/python3", ["-c", 'import gi; gi.require_version("WebKit2", "4.1"); gi.require_version("Gtk", "3.0")']);
  if (!existsSync(path) || !existsSync("/usr/bin/Xvfb") || gi.status !== 0) {
    throw new Error(
      `No WebKitWebDriver at ${path}, no Xvfb or no WebKit2 4.1 bindings for /usr/bin/python3. Install them (Debian: \`sudo apt-get update && sudo apt-get install -y ` +
        "webkit2gtk-driver xvfb gir1.2-webkit2-4.1 python3-gi`).",
    );
  }
  return path;
}

/** An X server of its own, its display number chosen by Xvfb (-displayfd) so runs never collide. */
async function startXvfb(): Promise<{ display: string; pgid: number }> {
  const child = spawn("/usr/bin/Xvfb", ["-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe", "pipe"],
  });
  const pgid = child.pid;
  if (pgid === undefined) throw new Error("Xvfb did not start");
  live.add(pgid);
  const fd3 = child.stdio[3] as NodeJS.ReadableStream;
  const display = await new Promise<string>((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    fd3.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(`:${out.trim()}`);
    });
    child.once("exit", (code) => reject(new Error(`Xvfb exited (${code}):\n${err}`)));
  });
  child.stderr?.resume();
  return { display, pgid };
}

async function launchWebKit(options: LaunchOptions): Promise<EngineBrowser> {
  const driverPath = webkitDriverPath();
  const xvfb = await startXvfb();
  const port = await freePort();
  const driverProcess = spawn(driverPath, [`--port=${port}`, "--host=127.0.0.1"], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, DISPLAY: xvfb.display, EDGE_UPLOAD_WEBKIT_PROFILE: options.profileDir },
  });
  const driverPgid = driverProcess.pid;
  if (driverPgid === undefined) throw new Error("WebKitWebDriver did not start");
  live.add(driverPgid);
  let driverLog = "";
  driverProcess.stderr?.on("data", (d: Buffer) => (driverLog = (driverLog + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  for (let tries = 0; ; tries++) {
    try {
      if ((await fetch(`${url}/status`)).ok) break;
    } catch {
      // not listening yet
    }
    if (driverProcess.exitCode !== null || tries > 200) throw new Error(`WebKitWebDriver did not answer on ${url}:\n${driverLog}`);
    await sleep(50);
  }
  let driver: WebDriver;
  try {
    driver = await new Builder()
      .usingServer(url)
      .withCapabilities({
        browserName: "edge-upload-webkit", // the name webkit-launcher.py reports
        "webkitgtk:browserOptions": { binary: LAUNCHER, args: [] },
      })
      .build();
  } catch (error) {
    await killGroup(driverPgid);
    await killGroup(xvfb.pgid);
    throw new Error(`WebKit session not created: ${error instanceof Error ? error.message : String(error)}\n${driverLog}`);
  }
  const caps = await driver.getCapabilities();
  const version = `WebKitGTK ${String(caps.get("browserVersion"))}`;
  await driver.manage().setTimeouts({ script: 120_000, pageLoad: 60_000 });
  return common("webkit", version, options, {
    // The driver's group holds the launcher and its web and network processes; Xvfb is ours.
    pgids: [driverPgid, xvfb.pgid],
    async open(target) {
      await driver.get(target);
    },
    // WebDriver's Execute Script awaits a returned promise (the spec's "promise-calling").
    evaluateExpression: (expression) => driver.executeScript(`return ${expression};`),
    async setFiles(selector, paths) {
      const input = (await driver.executeScript(`return ${findExpression(selector)};`)) as WebElement | null;
      if (!input) throw new Error(`webkit: no file input at ${selector}`);
      await input.sendKeys(paths.join("\n"));
    },
  });
}
