import { useEffect, useLayoutEffect, useRef } from "react";

// useLayoutEffect warns during server rendering; fall back to useEffect there.
const useIsoLayoutEffect = typeof window === "undefined" ? useEffect : useLayoutEffect;

/**
 * useLatest keeps a ref pointing at the latest value, so an effect
 * subscribed once always calls the handler of the latest render.
 */
export function useLatest<T>(value: T): { readonly current: T } {
  const ref = useRef(value);
  useIsoLayoutEffect(() => {
    ref.current = value;
  });
  return ref;
}
