/**
 * The part of the client library's Uploader (client/index.ts, issue 5) that the page uses.
 * Declared here, structurally, so the page depends on what it calls and nothing more.
 */
import type { UploadSnapshot, UploaderEvent } from "../types.ts";
import type { FileSource } from "./file-sources.ts";

export interface PageUploader {
  add(files: Iterable<FileSource>): Promise<UploadSnapshot[]>;
  restore(): Promise<UploadSnapshot[]>;
  list(): UploadSnapshot[];
  pause(key: string): Promise<void>;
  /** Called straight from a click: it may ask for permission to read a kept file handle. */
  resume(key: string): Promise<void>;
  cancel(key: string): Promise<void>;
  on(listener: (event: UploaderEvent) => void): () => void;
}
