/**
 * `edge-upload/element`: importing this module defines `<edge-upload>` (once; a second copy of
 * the package loaded on the same page leaves the first definition in place rather than throw).
 *
 *   <script type="module">import "edge-upload/element";</script>
 *   <edge-upload endpoint="https://uploads.example/files" chunk-size="16MiB"></edge-upload>
 *
 * See client/element/edge-upload-element.ts for attributes, properties and events.
 */
import { EdgeUploadElement } from "./edge-upload-element.ts";

if (!customElements.get("edge-upload")) customElements.define("edge-upload", EdgeUploadElement);

export { EdgeUploadElement, optionsFromAttributes } from "./edge-upload-element.ts";
export type { EdgeUploadEventMap, TokenSource, UploadEventDetail } from "./edge-upload-element.ts";
export type { PageUploader } from "../ui/uploader-port.ts";
