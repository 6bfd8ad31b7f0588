/**
 * `<edge-upload>`: the drag-and-drop upload UI (drop zone, file and folder pickers, rows with
 * both progress bars, speed, ETA, pause/resume/cancel, the interrupted uploads of an earlier
 * visit) as a custom element with an open shadow root, so any page or framework can host it and
 * its test hooks (docs/page.md) stay reachable by CSS selectors that pierce open roots.
 *
 * Configuration, read when the element is connected (see `optionsFromAttributes`):
 *   endpoint, token, chunk-size, concurrency, checkpoint-interval, hash-first, hash-rate,
 *   send-rate (sizes as "8MiB"), or the `options` property (UploaderOptions, over the attributes).
 * `token` may also be set as a property: a string or a function returning one (called before
 * every request, so a host can refresh it); it is always read at request time.
 *
 * Events (bubbling, composed, so they cross shadow roots): `upload-progress`, `upload-done`,
 * `upload-error`, each with an `UploadEventDetail`.
 *
 * Why the uploader is created on connection and files wait for restore(): a file given the moment
 * the element appears (drop, picker, or a test's setInputFiles) must never be lost or race the
 * list of interrupted uploads, which could otherwise start a second row for the same file.
 */
import { createUploader } from "../index.ts";
import type { Uploader } from "../uploader.ts";
import type { UploadError, UploaderEvent, UploaderOptions, UploadSnapshot, UploadStateKind } from "../types.ts";
import { type OptionNames, readOptions } from "../ui/config.ts";
import { findPageElements, type StartedPage, startPage } from "../ui/page.ts";
import type { PageUploader } from "../ui/uploader-port.ts";
import { ELEMENT_CSS } from "./styles.ts";
import { ELEMENT_HTML } from "./template.ts";

/** What `upload-progress`, `upload-done` and `upload-error` carry in `event.detail`. */
export interface UploadEventDetail {
  /** The upload's key (a fingerprint of the file): stable across reloads. */
  key: string;
  name: string;
  size: number;
  state: UploadStateKind;
  /** `sha256:<hex>`, once hashing finished. */
  digest?: string;
  /** The stored blob's URL, once done. */
  blobUrl?: string;
  /** Bytes hashed and uploaded so far. */
  hashed: number;
  uploaded: number;
  /** Set on `upload-error`: what went wrong. */
  error?: UploadError;
  /** The library's full snapshot (client/types.ts). */
  snapshot: UploadSnapshot;
}

/** The events <edge-upload> dispatches, for `addEventListener` typing. */
export interface EdgeUploadEventMap {
  "upload-progress": CustomEvent<UploadEventDetail>;
  "upload-done": CustomEvent<UploadEventDetail>;
  "upload-error": CustomEvent<UploadEventDetail>;
}

/** A bearer token, or a function returning one (called before every request). */
export type TokenSource = string | (() => string | Promise<string>);

/** Attributes read on connection; changing one while connected recreates the uploader when idle. */
const ATTRIBUTE_NAMES = {
  endpoint: "endpoint",
  token: "token",
  chunkSize: "chunk-size",
  concurrency: "concurrency",
  checkpointInterval: "checkpoint-interval",
  hashFirst: "hash-first",
  hashRate: "hash-rate",
  sendRate: "send-rate",
} satisfies OptionNames;

/** The attributes as uploader options; malformed values are left out (the library's defaults apply). */
export function optionsFromAttributes(el: Pick<Element, "getAttribute">): UploaderOptions {
  return readOptions((name) => el.getAttribute(name), ATTRIBUTE_NAMES);
}

function detailOf(snapshot: UploadSnapshot, error?: UploadError): UploadEventDetail {
  const state = snapshot.state;
  const detail: UploadEventDetail = {
    key: snapshot.key,
    name: snapshot.name,
    size: snapshot.size,
    state: state.kind,
    hashed: snapshot.hash.bytes,
    uploaded: snapshot.transfer.bytes,
    snapshot,
  };
  const digest = state.kind === "done" ? state.digest : snapshot.digest;
  if (digest) detail.digest = digest;
  if (state.kind === "done") detail.blobUrl = state.blobUrl;
  const failure = error ?? (state.kind === "failed" ? state.error : undefined);
  if (failure) detail.error = failure;
  return detail;
}

/**
 * The upload UI as an element. Import "edge-upload/element" to define it; this module only
 * declares the class (so a host may define it under another name).
 */
export class EdgeUploadElement extends HTMLElement {
  static observedAttributes = Object.values(ATTRIBUTE_NAMES);

  /** Uploader options over the attributes (e.g. `retry`, `limitRate`), read on connection. */
  options: Partial<UploaderOptions> = {};

  #token: TokenSource | undefined;
  #uploader: PageUploader | undefined;
  /** The uploader the host gave (kept across connections, never destroyed by the element). */
  #given: PageUploader | undefined;
  #created: Uploader | undefined;
  #page: StartedPage | undefined;
  #offEvents: (() => void) | undefined;
  #restored: Promise<unknown> = Promise.resolve();
  #doneKeys = new Set<string>();

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = ELEMENT_CSS;
    const template = document.createElement("template");
    template.innerHTML = ELEMENT_HTML;
    root.append(style, template.content.cloneNode(true));
  }

  /**
   * The bearer token: a string or a function (called before each request, e.g. to fetch a
   * fresh one from the host's backend). Overrides the `token` attribute.
   */
  get token(): TokenSource | undefined {
    return this.#token ?? this.options.token ?? this.getAttribute("token") ?? undefined;
  }
  set token(value: TokenSource | undefined) {
    this.#token = value;
  }

  /**
   * The uploader behind the UI. Set one before connecting to share it with the host's code (or
   * to stand one in, as the page tests do); otherwise the element creates one from its options.
   */
  get uploader(): PageUploader | undefined {
    return this.#uploader ?? this.#given;
  }
  set uploader(value: PageUploader | undefined) {
    this.#given = value;
    if (this.isConnected) {
      this.#stop();
      this.#start();
    }
  }

  /** Gives files to the uploader (as a drop or a picker would); waits for the restored list first. */
  async add(files: Iterable<File | FileSystemFileHandle>): Promise<UploadSnapshot[]> {
    const uploader = this.#uploader;
    if (!uploader) throw new Error("<edge-upload> is not connected");
    await this.#restored;
    return uploader.add(files);
  }

  /** Renders the rows now instead of on the next animation frame (after a host changed what `list()` returns). */
  refresh(): void {
    this.#page?.refresh();
  }

  /** The current uploads. */
  list(): UploadSnapshot[] {
    return this.#uploader?.list() ?? [];
  }

  connectedCallback(): void {
    // A move within the document disconnects and connects at once: keep what runs.
    if (this.#page) return;
    this.#start();
  }

  disconnectedCallback(): void {
    // Stop only if it stays out of the document (a move reconnects in the same task).
    queueMicrotask(() => {
      if (!this.isConnected) this.#stop();
    });
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (old === value || !this.#page || name === "token") return;
    // New options take effect with a new uploader, but never cut a running upload short.
    const running = this.list().some((s) => ["queued", "hashing", "uploading"].includes(s.state.kind));
    if (running || this.#given) return;
    this.#stop();
    this.#start();
  }

  #start(): void {
    const given = this.#given;
    let uploader: PageUploader;
    if (given) {
      uploader = given;
    } else {
      const fromAttributes = optionsFromAttributes(this);
      const options: UploaderOptions = { ...fromAttributes, ...this.options };
      // The token is read at request time: a host may set or refresh it at any moment.
      options.token = () => {
        const token = this.token;
        return typeof token === "function" ? token() : (token ?? "");
      };
      this.#created = createUploader(options);
      uploader = this.#created;
    }
    this.#uploader = uploader;
    const restored = uploader.restore();
    this.#restored = restored.catch(() => undefined);
    // Files wait for the restored list, so a file given at once continues its interrupted row.
    const gated: PageUploader = {
      ...uploader,
      add: async (files) => {
        await this.#restored;
        return uploader.add(files);
      },
      list: () => uploader.list(),
      restore: () => uploader.restore(),
      pause: (key) => uploader.pause(key),
      resume: (key) => uploader.resume(key),
      cancel: (key) => uploader.cancel(key),
      on: (listener) => uploader.on(listener),
    };
    const page = startPage(findPageElements(this.shadowRoot ?? this), gated);
    this.#page = page;
    this.#doneKeys = new Set(
      uploader
        .list()
        .filter((s) => s.state.kind === "done")
        .map((s) => s.key),
    );
    this.#offEvents = uploader.on((event) => this.#dispatch(event));
    restored.then(page.refresh, (error: unknown) => {
      page.say(`Could not list the uploads of your last visit: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  #stop(): void {
    this.#offEvents?.();
    this.#offEvents = undefined;
    this.#page?.stop();
    this.#page = undefined;
    this.#created?.destroy();
    this.#created = undefined;
    this.#uploader = undefined;
  }

  #dispatch(event: UploaderEvent): void {
    const fire = (type: keyof EdgeUploadEventMap, detail: UploadEventDetail) =>
      this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
    if (event.type === "error") {
      fire("upload-error", detailOf(event.upload, event.error));
      return;
    }
    const s = event.upload;
    if (s.state.kind === "done") {
      // Once per upload: a finished row keeps sending change events (e.g. on re-render).
      if (this.#doneKeys.has(s.key)) return;
      this.#doneKeys.add(s.key);
      fire("upload-done", detailOf(s));
    } else if (s.state.kind === "failed") {
      // The library sends an "error" event with the failure too; "upload-error" is fired from there.
      return;
    } else {
      this.#doneKeys.delete(s.key);
      fire("upload-progress", detailOf(s));
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    "edge-upload": EdgeUploadElement;
  }
}
