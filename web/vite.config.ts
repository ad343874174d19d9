import { defineConfig } from "vite";
import { sourceConditions } from "./workspace-conditions";

// The demo is built to web/dist, which `realtimed --dev` serves at `/`.
// `npm run dev` serves it from Vite instead and proxies the API to a
// realtimed on 127.0.0.1:8080 (override with REALTIMED_URL).
const api = process.env.REALTIMED_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  // The demo is built from the packages' sources, like the tests run them.
  ...sourceConditions,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No source maps in the build: realtimed refuses *.map anyway, and a
    // public build should not ship its sources.
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
    rollupOptions: {
      onwarn(warning, warn) {
        // lucide-react and Clerk ship "use client" directives for RSC; harmless here.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  server: {
    host: "127.0.0.1",
    port: 5173,
    proxy: {
      "/honeydo.": { target: api, changeOrigin: false },
      "/dev/": { target: api, changeOrigin: false },
    },
  },
});
