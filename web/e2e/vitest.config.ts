import { defineConfig } from "vitest/config";
import { sourceConditions } from "../workspace-conditions";

// The browser tests: Debian's Chromium driven by playwright-core against
// `realtimed --dev` serving the built demo (npm run build first).
export default defineConfig({
  ...sourceConditions,
  test: {
    include: ["e2e/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
