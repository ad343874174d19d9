import { Code, ConnectError, type Transport } from "@connectrpc/connect";

/**
 * withCallTimeout bounds the unary calls of a transport: a call with no
 * timeout of its own gets `timeoutMs` (none if ≤ 0), and one that runs out
 * of its timeout fails with DEADLINE_EXCEEDED and a message that says what
 * happened instead of connect's "the operation timed out". Without a bound,
 * a call to a frozen server or over a dead network path would wait until
 * the browser gives up, minutes later. Streams pass through untouched: the
 * stream loop watches them with its watchdog.
 */
export function withCallTimeout(inner: Transport, timeoutMs: number): Transport {
  return {
    async unary(method, signal, callTimeoutMs, header, input, contextValues) {
      const t = callTimeoutMs ?? (timeoutMs > 0 ? timeoutMs : undefined);
      try {
        return await inner.unary(method, signal, t, header, input, contextValues);
      } catch (err) {
        const ce = ConnectError.from(err);
        if (ce.code !== Code.DeadlineExceeded || t === undefined || t <= 0 || signal?.aborted === true) throw err;
        throw new ConnectError(
          `no answer from the server within ${formatSeconds(t)}`,
          Code.DeadlineExceeded,
          ce.metadata,
          undefined,
          err,
        );
      }
    },
    stream: (...args) => inner.stream(...args),
  };
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
