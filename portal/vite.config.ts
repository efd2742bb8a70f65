// The portal's build: static assets served by the management role under /portal/.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/portal/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // One small bundle; no source maps shipped.
    sourcemap: false,
  },
});
