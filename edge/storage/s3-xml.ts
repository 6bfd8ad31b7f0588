/**
 * The S3 REST API's XML, both ways, with fast-xml-parser (pure JS; runs in workerd). Values stay
 * strings (an ETag or a key must never turn into a number), entities are decoded (S3 sends ETags
 * as `&quot;...&quot;`), and the few elements that repeat are always arrays, so a one-element
 * listing reads like a long one.
 */
import { XMLBuilder, XMLParser } from "fast-xml-parser";

/** A parsed element: text, or child elements by name (repeating ones as arrays). */
export type XmlValue = string | XmlElement | XmlValue[];
export interface XmlElement {
  [name: string]: XmlValue | undefined;
}

/** Elements that may repeat, by path from the root. */
const REPEATED = new Set(["ListBucketResult.Contents", "ListPartsResult.Part", "DeleteResult.Error", "DeleteResult.Deleted"]);

const parser = new XMLParser({
  ignoreAttributes: true,
  ignoreDeclaration: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (_name, jpath) => REPEATED.has(String(jpath)),
});

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", suppressEmptyNode: false });

/** Parses a response body; an empty or malformed body gives an empty element. */
export function parseXml(text: string): XmlElement {
  if (text.trim() === "") return {};
  try {
    const parsed: unknown = parser.parse(text);
    return isElement(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** A request body: `{ Root: { Child: "text", Repeated: [{...}, {...}] } }` with the XML declaration. */
export function buildXml(document: XmlElement): string {
  return `<?xml version="1.0" encoding="UTF-8"?>${builder.build(document) as string}`;
}

export function isElement(value: unknown): value is XmlElement {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The child element `name` of `node` (the first, when it repeats). */
export function child(node: XmlValue | undefined, name: string): XmlElement | undefined {
  if (!isElement(node)) return undefined;
  const value = node[name];
  const first = Array.isArray(value) ? value[0] : value;
  return isElement(first) ? first : undefined;
}

/** Every child element `name` of `node`. */
export function children(node: XmlValue | undefined, name: string): XmlElement[] {
  if (!isElement(node)) return [];
  const value = node[name];
  return (Array.isArray(value) ? value : value === undefined ? [] : [value]).filter(isElement);
}

/** The text of child `name` of `node`; "" for an empty element, undefined when absent. */
export function text(node: XmlValue | undefined, name: string): string | undefined {
  if (!isElement(node)) return undefined;
  const value = node[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first === "string") return first;
  // An empty element parses as "" or as an empty object, depending on how it was written.
  if (isElement(first) && Object.keys(first).length === 0) return "";
  return undefined;
}
