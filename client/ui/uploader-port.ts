/**
 * The part of the client library's Uploader (client/uploader.ts) that the page uses: everything
 * but destroy(), so a stand-in for the render tests implements only what the page calls.
 */
import type { Uploader } from "../uploader.ts";

export type PageUploader = Omit<Uploader, "destroy">;
