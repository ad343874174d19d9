export { freePort, Realtimed, realtimedBinary, SERVICE_KEY, sleep, waitFor } from "./realtimed";
export type { RealtimedOptions, StreamsSnapshot } from "./realtimed";
export { MemoryLocks } from "./memory-locks";
export { FlakyNetwork } from "./flaky-network";
export { FakeEnvironment } from "./fake-environment";
