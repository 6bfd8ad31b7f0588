/**
 * The hasher's reader: a Web Worker that reads the File into buffers and hands them to the
 * hasher worker over the port it is given (reader.ts). Started with the hasher by
 * worker-hasher.ts and terminated with it.
 */
import { serveFile } from "./reader.ts";

/** The one message the reader gets: the file, the port to its hasher, and, when the file is copied too, the one the copier returns buffers on. */
export interface ReaderStart {
  file: Blob;
  port: MessagePort;
  returns?: MessagePort;
}

declare const self: { onmessage: ((event: MessageEvent<ReaderStart>) => void) | null };

self.onmessage = (event) => serveFile(event.data.file, event.data.port, event.data.returns);
