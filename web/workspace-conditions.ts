import { defaultClientConditions, defaultServerConditions, type UserConfig } from "vite";

/**
 * SOURCE_CONDITION is the export condition under which the workspace's
 * packages (packages/*) point at their TypeScript sources instead of dist/.
 * Vite and Vitest resolve it, so the demo and the tests run the current
 * sources without a build step and load each module once; tsc and every app
 * outside the workspace ignore it and get dist/.
 */
export const SOURCE_CONDITION = "@honeydo/source";

/** sourceConditions is the Vite config fragment that turns it on (browser and SSR/Node resolution). */
export const sourceConditions = {
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions] } },
} satisfies UserConfig;
