/**
 * The hasher's reader: a Web Worker that reads the File into buffers and hands them to the
 * hasher worker over the port it is given (reader.ts). Started with the hasher by
 * worker-hasher.ts and terminated with it.
 */
import { serveFile } from "./reader.ts";

declare const self: { onmessage: ((event: MessageEvent<{ file: Blob; port: MessagePort }>) => void) | null };

self.onmessage = (event) => serveFile(event.data.file, event.data.port);
