/**
 * The page's entry (index.html loads it): one uploader for this origin's edge (or the one in
 * ?endpoint=, see config.ts), the page wired to it, and the uploads an earlier visit left
 * unfinished listed at once.
 */
import { createUploader } from "../index.ts";
import { optionsFromQuery } from "./config.ts";
import { findPageElements, startPage } from "./page.ts";

const uploader = createUploader(optionsFromQuery(location.search));
const page = startPage(findPageElements(), uploader);
uploader.restore().then(page.refresh, (error: unknown) => {
  const status = document.querySelector("#status");
  if (status) status.textContent = `Could not list the uploads of your last visit: ${error instanceof Error ? error.message : String(error)}`;
});
