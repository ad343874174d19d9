// Package benchapi serves the benchmark control API that
// bench/peers/run.sh and realtimectl bench drive: the same routes the
// Socket.io and Centrifuge peers expose (/bench/info, /bench/publish,
// /bench/gc), so that realtimed joins their table, plus the Go profiles of
// the server under load (/bench/pprof/...).
//
// The API can flood every stream, so a server mounts it only in dev mode,
// and every route answers loopback callers only, under a loopback Host
// (package devhost), and POSTs take JSON only, of bounded size
// (routes.go says why). It publishes through the broker exactly as modules
// do (publish.go).
//
// Handlers may run concurrently; each publish run is owned by its request
// and ends with it.
package benchapi
