/**
 * The <edge-upload> element's shadow DOM: the markup the page had in index.html, with the test
 * hooks of docs/page.md (data-testid, ids) and `part` names for styling from outside. Static
 * markup only: file names and messages are written later as text nodes (client/ui/render.ts).
 */
export const ELEMENT_HTML = `
<div class="root">
  <div id="drop" class="drop-zone" part="drop-zone" data-testid="drop-zone" role="button" tabindex="0" aria-describedby="drop-hint">
    <svg class="drop-zone__icon" aria-hidden="true" viewBox="0 0 24 24" width="40" height="40">
      <path fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"
        d="M12 16V4m0 0-4.5 4.5M12 4l4.5 4.5M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3" />
    </svg>
    <span class="drop-zone__title" part="drop-title"><slot name="drop-title">Drop files or folders here</slot></span>
    <span class="drop-zone__hint" part="drop-hint" id="drop-hint"><slot name="drop-hint">or click, or press Enter, to choose files</slot></span>
  </div>
  <div class="pickers" part="pickers">
    <!-- The drop zone opens the picker; this input is its fallback and the test hook. -->
    <input id="file-input" class="visually-hidden" type="file" data-testid="file-input" multiple tabindex="-1" aria-label="Choose files" />
    <button id="folder-button" class="btn btn--secondary" part="folder-button button" type="button">Choose a folder…</button>
    <input id="folder-input" class="visually-hidden" type="file" webkitdirectory multiple tabindex="-1" aria-label="Choose a folder" />
  </div>
  <p id="status" class="status" part="status" role="status"></p>

  <section id="interrupted" class="panel panel--interrupted" part="interrupted" aria-labelledby="interrupted-heading" hidden>
    <h2 id="interrupted-heading">Interrupted uploads</h2>
    <p id="interrupted-summary" part="interrupted-summary"></p>
    <button id="resume-all" class="btn btn--primary" part="resume-all button" type="button" data-action="resume-all" hidden>Resume</button>
    <ul id="interrupted-list" class="upload-list" part="list"></ul>
  </section>

  <section id="uploads" class="panel" part="uploads" aria-labelledby="uploads-heading" hidden>
    <h2 id="uploads-heading">Uploads</h2>
    <ul id="upload-list" class="upload-list" part="list"></ul>
  </section>

  <!-- State changes (never progress ticks) are read out from here. -->
  <div id="announcer" class="visually-hidden" aria-live="polite" aria-atomic="true"></div>
</div>
`;
