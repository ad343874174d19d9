// @honeydo/realtime-react/query: realtime events for TanStack Query caches.
// A subpath of its own, so that apps without @tanstack/react-query can use
// the rest of the package.
export {
  connectRealtimeQueries,
  useRealtimeQueries,
  type EventPatch,
  type RealtimeQueries,
  type RealtimeQueriesOptions,
  type RealtimeQueryEvents,
  type TaggedKey,
} from "./realtime-queries.js";
