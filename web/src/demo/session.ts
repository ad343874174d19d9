import type { TokenProvider } from "@honeydo/realtime";

/** Session is a signed-in person, however they signed in (dev picker or Clerk). */
export interface Session {
  readonly mode: "dev" | "clerk";
  readonly userId: string;
  readonly displayName: string;
  readonly householdId: string;
  readonly householdName: string;
  /** getToken is the same interface in both modes. */
  readonly getToken: TokenProvider;
  readonly signOut: () => void | Promise<void>;
}

/** DevUser is one of the people the dev picker offers. */
export interface DevUser {
  readonly id: string;
  readonly name: string;
  readonly householdId: string;
  readonly householdName: string;
  readonly color: string;
}

export const DEV_USERS: readonly DevUser[] = [
  { id: "alice", name: "Alice", householdId: "home", householdName: "Home", color: "#b83a1b" },
  { id: "bob", name: "Bob", householdId: "home", householdName: "Home", color: "#1f6f8f" },
  { id: "carol", name: "Carol", householdId: "other", householdName: "Other household", color: "#7b5ea7" },
];

/** displayNameOf names a user id for people: "you", a dev user's name, or the id. */
export function displayNameOf(userId: string, me: string): string {
  if (userId === me) return "you";
  return DEV_USERS.find((u) => u.id === userId)?.name ?? userId;
}

/** colorOf picks a stable avatar colour for a user id. */
export function colorOf(userId: string): string {
  const known = DEV_USERS.find((u) => u.id === userId);
  if (known) return known.color;
  let h = 0;
  for (const ch of userId) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  // Dark enough for white initials at 4.5:1 whatever the hue (yellow is the worst).
  return `hsl(${h % 360} 55% 30%)`;
}

/** apiBaseUrl is VITE_REALTIME_URL, or the page's own origin (realtimed serves both). */
export function apiBaseUrl(): string {
  const configured: unknown = import.meta.env.VITE_REALTIME_URL;
  return typeof configured === "string" && configured !== "" ? configured : window.location.origin;
}

let idSeq = 0;

/** newId makes a local id; crypto.randomUUID needs a secure context, so fall back. */
export function newId(prefix: string): string {
  const rnd =
    typeof crypto !== "undefined" && typeof crypto.randomUUID === "function"
      ? crypto.randomUUID()
      : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `${prefix}:${rnd}:${++idSeq}`;
}
