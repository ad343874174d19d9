import { defineConfig } from "vitest/config";
import { sourceConditions } from "./workspace-conditions";

// Unit tests run in Node against a real `realtimed --dev` that each test file
// starts itself (see packages/testing/src/realtimed.ts). The packages are
// loaded from their sources (see workspace-conditions.ts).
export default defineConfig({
  esbuild: { jsx: "automatic" },
  ...sourceConditions,
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx", "packages/*/src/**/*.test.ts", "packages/*/src/**/*.test.tsx"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fileParallelism: true,
  },
});
