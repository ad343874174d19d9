import { defineConfig } from "vitest/config";

// Unit tests run in Node against a real `realtimed --dev` that each test file
// starts itself (see src/testing/realtimed.ts).
export default defineConfig({
  esbuild: { jsx: "automatic" },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fileParallelism: true,
  },
});
