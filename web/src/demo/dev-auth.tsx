import { ArrowRight, ShoppingBasket } from "lucide-react";
import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { devTokenProvider } from "@honeydo/realtime";
import { apiBaseUrl, DEV_USERS, type DevUser, type Session } from "./session";
import { SignedInApp } from "./signed-in-app";

const STORAGE_KEY = "honeydo.dev-user";

function storedUser(): DevUser | undefined {
  try {
    const id = window.localStorage.getItem(STORAGE_KEY);
    return DEV_USERS.find((u) => u.id === id);
  } catch {
    return undefined;
  }
}

/**
 * DevApp signs people in with `realtimed --dev`'s /dev/token: a picker of
 * the dev users. The choice is kept in localStorage, so every tab of the
 * browser is the same person (as with Clerk), and signing out in one tab
 * signs out the others.
 */
export function DevApp(): ReactNode {
  const [user, setUser] = useState<DevUser | undefined>(storedUser);
  useEffect(() => {
    const onStorage = (e: StorageEvent): void => {
      if (e.key === STORAGE_KEY || e.key === null) setUser(storedUser());
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, []);
  const signIn = useCallback((u: DevUser) => {
    window.localStorage.setItem(STORAGE_KEY, u.id);
    setUser(u);
  }, []);
  const signOut = useCallback(() => {
    window.localStorage.removeItem(STORAGE_KEY);
    setUser(undefined);
  }, []);
  const session = useMemo<Session | undefined>(() => {
    if (user === undefined) return undefined;
    return {
      mode: "dev",
      userId: user.id,
      displayName: user.name,
      householdId: user.householdId,
      householdName: user.householdName,
      getToken: devTokenProvider({ baseUrl: apiBaseUrl(), user: user.id, household: user.householdId, ttl: "15m" }),
      signOut,
    };
  }, [user, signOut]);
  return session ? <SignedInApp session={session} /> : <UserPicker onPick={signIn} />;
}

function UserPicker({ onPick }: { onPick: (u: DevUser) => void }): ReactNode {
  return (
    <main className="welcome">
      <div className="welcome__card card">
        <span className="brand__mark brand__mark--large" aria-hidden="true">
          <ShoppingBasket size={28} />
        </span>
        <h1>Who's shopping?</h1>
        <p className="welcome__lead">
          Pick a household member to try HoneyDo. Open a second window as someone else and watch the list update
          live.
        </p>
        <ul className="people">
          {DEV_USERS.map((u) => (
            <li key={u.id}>
              {/* The name is the visible text ("Alice Home") after a hidden "Continue as". */}
              <button type="button" className="person" onClick={() => onPick(u)}>
                <span className="avatar avatar--lg" style={{ background: u.color }} aria-hidden="true">
                  {u.name.slice(0, 1)}
                </span>
                <span className="person__text">
                  <span className="visually-hidden">Continue as </span>
                  <span className="person__name">{u.name}</span>
                  <span className="person__household">{u.householdName}</span>
                </span>
                <ArrowRight size={18} aria-hidden="true" className="person__go" />
              </button>
            </li>
          ))}
        </ul>
        <p className="welcome__note">Development mode: tokens come from this server's /dev/token.</p>
      </div>
    </main>
  );
}
