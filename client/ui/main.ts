/**
 * The page's entry (index.html loads it): a thin host of the <edge-upload> element, configured
 * from the address (?endpoint=, ?token=, ?chunk= ..., see config.ts). The element is created here,
 * with its options set before it is connected, so its uploader starts once, with them.
 */
import "../element/index.ts";
import { optionsFromQuery } from "./config.ts";

const element = document.createElement("edge-upload");
element.id = "uploader";
element.options = optionsFromQuery(location.search);
document.querySelector("main")?.append(element);
