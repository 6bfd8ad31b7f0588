import { defineConfig } from "vite";

// The page: page/index.html and what it imports (edge-upload/element and its hasher Web Workers)
// bundled into public/, the directory wrangler.jsonc serves as static assets.
export default defineConfig({
  root: "page",
  build: { outDir: "../public", emptyOutDir: true },
});
