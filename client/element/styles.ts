/**
 * The <edge-upload> element's stylesheet, as a string so the package needs no CSS loader (tsc
 * output runs as is in any bundler). Mobile first, 360 px wide and up.
 *
 * A host page styles it from outside through:
 * - custom properties (inherited into the shadow root): `--edge-upload-accent`, `-accent-fg`,
 *   `-bg`, `-fg`, `-muted`, `-card`, `-line`, `-ok`, `-warn`, `-bad`, `-focus`, `-radius`,
 *   `-font`; each has a light and a dark default;
 * - `::part()`: drop-zone, drop-title, drop-hint, pickers, folder-button, status, interrupted,
 *   interrupted-summary, resume-all, uploads, list, row, row-name, row-size, row-state, meter,
 *   progress, row-message, row-result, digest, link, actions, button (plus button-pause,
 *   button-resume, button-choose, button-cancel).
 */
export const ELEMENT_CSS = `
:host {
  --bg: var(--edge-upload-bg, #f7f7f5);
  --fg: var(--edge-upload-fg, #1c1c1a);
  --muted: var(--edge-upload-muted, #5c5c57);
  --card: var(--edge-upload-card, #ffffff);
  --line: var(--edge-upload-line, #d9d9d3);
  --accent: var(--edge-upload-accent, #1d5fd1);
  --accent-fg: var(--edge-upload-accent-fg, #ffffff);
  --ok: var(--edge-upload-ok, #177245);
  --warn: var(--edge-upload-warn, #8a5a00);
  --bad: var(--edge-upload-bad, #b3261e);
  --focus: var(--edge-upload-focus, #f2b705);
  --radius: var(--edge-upload-radius, 10px);
  display: block;
  font-family: var(--edge-upload-font, inherit);
  line-height: 1.45;
  color: var(--fg);
  min-width: 0;
}
:host([hidden]) {
  display: none;
}
@media (prefers-color-scheme: dark) {
  :host {
    --bg: var(--edge-upload-bg, #161615);
    --fg: var(--edge-upload-fg, #ecece8);
    --muted: var(--edge-upload-muted, #a9a9a2);
    --card: var(--edge-upload-card, #21211f);
    --line: var(--edge-upload-line, #3a3a36);
    --accent: var(--edge-upload-accent, #7aa7ff);
    --accent-fg: var(--edge-upload-accent-fg, #0b1a33);
    --ok: var(--edge-upload-ok, #5fd39a);
    --warn: var(--edge-upload-warn, #f0b955);
    --bad: var(--edge-upload-bad, #ff8a80);
  }
}
* {
  box-sizing: border-box;
}
h2 {
  font-size: 1.15rem;
  margin: 0 0 0.5rem;
}

/* Focus must always be visible, in both colour schemes. */
:focus-visible {
  outline: 3px solid var(--focus);
  outline-offset: 2px;
}

.visually-hidden {
  position: absolute !important;
  width: 1px;
  height: 1px;
  padding: 0;
  margin: -1px;
  overflow: hidden;
  clip: rect(0 0 0 0);
  white-space: nowrap;
  border: 0;
}

.drop-zone {
  display: flex;
  flex-direction: column;
  align-items: center;
  gap: 0.25rem;
  padding: 2rem 1rem;
  border: 2px dashed var(--line);
  border-radius: var(--radius);
  background: var(--card);
  text-align: center;
  cursor: pointer;
  transition: border-color 0.15s, background-color 0.15s;
}
.drop-zone:hover,
.drop-zone.is-dragover {
  border-color: var(--accent);
}
.drop-zone.is-dragover {
  background: color-mix(in srgb, var(--accent) 10%, var(--card));
}
.drop-zone__icon {
  color: var(--accent);
}
.drop-zone__title {
  font-weight: 600;
  font-size: 1.1rem;
}
.drop-zone__hint {
  color: var(--muted);
}

.pickers {
  display: flex;
  flex-wrap: wrap;
  gap: 0.5rem;
  margin: 0.75rem 0;
}
.status:empty {
  display: none;
}
.status {
  color: var(--bad);
}

.btn {
  font: inherit;
  min-height: 2.5rem; /* a comfortable touch target */
  padding: 0.4rem 0.9rem;
  border-radius: 8px;
  border: 1px solid var(--line);
  background: var(--card);
  color: var(--fg);
  cursor: pointer;
}
.btn:hover {
  border-color: var(--accent);
}
.btn--primary,
.btn--resume {
  background: var(--accent);
  border-color: var(--accent);
  color: var(--accent-fg);
}
.btn--cancel {
  color: var(--bad);
}
[hidden] {
  display: none !important;
}

.panel {
  margin-top: 1.25rem;
}
.panel--interrupted {
  padding: 0.75rem;
  border-radius: var(--radius);
  border: 1px solid color-mix(in srgb, var(--warn) 50%, var(--line));
  background: color-mix(in srgb, var(--warn) 8%, var(--bg));
}
.panel--interrupted > p {
  margin: 0 0 0.75rem;
}

.upload-list {
  list-style: none;
  margin: 0.75rem 0 0;
  padding: 0;
  display: grid;
  gap: 0.75rem;
}
.upload {
  background: var(--card);
  border: 1px solid var(--line);
  border-left: 4px solid var(--line);
  border-radius: var(--radius);
  padding: 0.75rem;
  display: grid;
  gap: 0.4rem;
  min-width: 0;
}
.upload[data-state="hashing"],
.upload[data-state="uploading"] {
  border-left-color: var(--accent);
}
.upload[data-state="done"] {
  border-left-color: var(--ok);
}
.upload[data-state="failed"] {
  border-left-color: var(--bad);
}
.upload[data-state="paused"],
.upload[data-state="interrupted"] {
  border-left-color: var(--warn);
}
.upload__head {
  display: flex;
  flex-wrap: wrap;
  align-items: baseline;
  gap: 0.25rem 0.75rem;
}
.upload__name {
  font-weight: 600;
  overflow-wrap: anywhere; /* long file names wrap instead of widening the page */
  flex: 1 1 12rem;
  min-width: 0;
}
.upload__size {
  color: var(--muted);
  font-variant-numeric: tabular-nums;
}
.upload__state {
  font-size: 0.85rem;
  font-weight: 600;
  padding: 0.05rem 0.5rem;
  border-radius: 999px;
  background: color-mix(in srgb, var(--muted) 15%, transparent);
}
.upload[data-state="done"] .upload__state {
  color: var(--ok);
}
.upload[data-state="failed"] .upload__state {
  color: var(--bad);
}
.upload[data-state="paused"] .upload__state,
.upload[data-state="interrupted"] .upload__state {
  color: var(--warn);
}

.meter {
  display: grid;
  grid-template-columns: 5.5rem 1fr;
  align-items: center;
  gap: 0 0.5rem;
}
.meter__label {
  font-size: 0.9rem;
  color: var(--muted);
}
.meter progress {
  width: 100%;
  height: 0.6rem;
  accent-color: var(--accent);
}
.meter__stats {
  grid-column: 2;
  font-size: 0.8rem;
  color: var(--muted);
  font-variant-numeric: tabular-nums;
  min-height: 1.1em;
}
/* Once done, the bars have said what they had to say. */
.upload[data-state="done"] .meter {
  display: none;
}

.upload__message,
.upload__staged,
.upload__result {
  margin: 0;
  font-size: 0.9rem;
}
.upload__staged {
  color: var(--muted);
}
.upload[data-state="failed"] .upload__message {
  color: var(--bad);
}
.upload__digest {
  font-size: 0.8rem;
  overflow-wrap: anywhere;
}
.upload__note {
  display: block;
  color: var(--muted);
}
.upload__note:empty {
  display: none;
}
.upload__link {
  white-space: nowrap;
  color: var(--accent);
}
.upload__actions {
  display: flex;
  flex-wrap: wrap;
  gap: 0.5rem;
}
.upload__actions:not(:has(button:not([hidden]))) {
  display: none;
}

/* Wide enough (the element's own width, not the viewport's): stats sit beside their bar. */
@container edge-upload (min-width: 36rem) {
  .meter {
    grid-template-columns: 5.5rem 1fr 13rem;
  }
  .meter__stats {
    grid-column: 3;
  }
  .drop-zone {
    padding: 3rem 1rem;
  }
}
.root {
  container: edge-upload / inline-size;
}
@media (prefers-reduced-motion: reduce) {
  .drop-zone {
    transition: none;
  }
}
`;
