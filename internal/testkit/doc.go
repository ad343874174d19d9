// Package testkit holds the helpers that the test suites of several
// packages share: a real realtimed server on a loopback port
// ([StartServer]; over HTTPS, [StartTLSServer]), dev tokens
// ([Server.Token]), HTTP/1.1 and h2c clients ([HTTPClient]) and a logger
// that writes to the test ([Logger]).
//
// It is for tests only. Everything takes a [testing.TB], fails the test on
// error and registers its own cleanup on it; production code must not
// import this package. In-package tests (package broker, not
// broker_test) of the packages testkit imports, such as auth, broker and
// shopping, cannot use it without an import cycle; what they share with
// the rest lives in leaf packages below it that import nothing of ours:
// poll (wait for a condition), natstest (in-process nats-server) and
// syncbuf (a buffer for concurrent loggers).
//
// Concurrency: call the helpers from the test goroutine. A [Logger] may be
// used from any goroutine, and [Server.Restart] says which fields other
// goroutines may read while the server restarts.
package testkit
