import { Code, ConnectError } from "@connectrpc/connect";

/**
 * What the person was doing when it failed: loading the list (which the demo
 * retries by itself once the connection is back) or changing it (which it
 * does not retry: the person decides).
 */
export type ErrorContext = "load" | "change";

/**
 * humanError is the one place where the demo turns a failed call into words
 * for people. Server messages and browser texts ("Failed to fetch") are for
 * developers and logs, never shown: they are in English or not, technical,
 * and may change with any release.
 */
export function humanError(err: unknown, context: ErrorContext): string {
  switch (kindOf(err)) {
    case "unreachable":
      return context === "load"
        ? "Couldn't reach HoneyDo — we'll retry when the connection is back."
        : "Couldn't reach HoneyDo. Check your connection and try again.";
    case "signed-out":
      return "Your sign-in has expired. Sign in again to continue.";
    case "forbidden":
      return "You don't have access to this household's list.";
    case "rejected":
      return "HoneyDo couldn't accept that. Check it and try again.";
    case "gone":
      return "That item is no longer on the list; someone may have removed it.";
    case "busy":
      return "HoneyDo is busy right now. Wait a moment and try again.";
    case "conflict":
      return "The list changed at the same time. Try again.";
    case "full":
      return "This list is full — remove some items to add more.";
    case "outdated":
      return "This page is out of date. Reload it to get the latest version.";
    case "broken":
      return context === "load"
        ? "Something went wrong at HoneyDo — we'll retry."
        : "Something went wrong at HoneyDo. Try again in a moment.";
  }
}

type ErrorKind =
  | "unreachable"
  | "signed-out"
  | "forbidden"
  | "rejected"
  | "gone"
  | "busy"
  | "conflict"
  | "full"
  | "outdated"
  | "broken";

/**
 * outcomeUnknown tells whether a failed change may have been applied all
 * the same: the server may have committed it before the answer was lost (a
 * timeout, a dropped connection, a proxy's error). The acting tab skips the
 * event its own call causes, so after such a failure only a refetch shows
 * what happened. Every other code means the server refused the change.
 */
export function outcomeUnknown(err: unknown): boolean {
  switch (ConnectError.from(err).code) {
    case Code.DeadlineExceeded:
    case Code.Unavailable:
    case Code.Unknown:
    case Code.Internal:
    case Code.Canceled:
      return true;
    default:
      return false;
  }
}

function kindOf(err: unknown): ErrorKind {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.Canceled: // connect-web reports a timed-out fetch as Canceled
      return "unreachable";
    case Code.Unauthenticated:
      return "signed-out";
    case Code.PermissionDenied:
      return "forbidden";
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return "rejected";
    case Code.NotFound:
      return "gone";
    case Code.ResourceExhausted:
      return "busy";
    case Code.Aborted:
    case Code.AlreadyExists:
      return "conflict";
    case Code.FailedPrecondition:
      // The demo's only source of it: an add to a list at the server's
      // --max-items-per-household (internal/shopping's toConnectError),
      // which no retry can help until someone removes items.
      return "full";
    case Code.Unimplemented:
      return "outdated";
    case Code.Unknown:
      // fetch() rejects with a TypeError when the network or the server is
      // gone; connect-web passes it on as Unknown with that cause.
      return e.cause instanceof TypeError ? "unreachable" : "broken";
    default:
      return "broken";
  }
}
