// Package echo is "wsload echo": throughput, round-trip latency and CPU
// cost of echoing messages, plain or compressed.
//
// What it measures: echoes received per second and MB/s in the window;
// the round trip of each message (p50, p99, p99.9, max, from an
// HdrHistogram in µs); the server's CPU seconds in the window and echoes
// per server CPU-second; the client's own CPU; every echo compared byte
// for byte with what was sent (mismatch); with -deflate, the bytes on the
// wire per message each way and how many connections the server accepted
// compression on (echodeflate.go).
//
// How: -c connections, in this process or over -procs client processes
// (internal/fleet), each keeping -k messages of -size bytes in flight
// (wsclient.EchoPayload, or with -payload json a price list that
// compresses like real traffic); time pushes in between are skipped and
// counted. A -warmup runs first and is left out of every figure; the
// parent samples the server's CPU at the window's edges, each worker its
// own.
//
// What it writes: a table on stdout and one line "RESULT {json}" (the
// Result struct). It keeps no file; compare -workload echo keeps
// compare-echo.{json,md,png}.
package echo
