// Package cluster runs HoneyDo Realtime as several nodes in one process, for
// tests and benchmarks: in-process nats-servers (one, or a JetStream cluster
// of three), realtimed nodes (the real [server.Server] on the JetStream
// broker, loopback ports, one shared dev key so tokens work on every node),
// and a round-robin TCP balancer in front of them.
//
// Everything here takes a [testing.TB] and registers its own cleanup; it is
// not meant for production code. The tests beside it prove the multi-node
// guarantees: fan-out across nodes, household isolation, and zero events
// lost or duplicated when a NATS server or a realtimed node dies.
//
// Concurrency: helpers may be called from the test goroutine only, except
// where a method says otherwise; the servers they start are concurrent.
package cluster
