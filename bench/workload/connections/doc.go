// Package connections is "wsload connections": what one idle WebSocket
// connection costs the server.
//
// What it measures: the server's RSS, file descriptors and threads per
// open, idle connection (from /proc/PID before the first dial and after the
// hold), how fast it accepts them (connections per second while dialing),
// how many it drops while idle, and what it gives back a second after the
// clients are gone.
//
// How: -n connections over -procs client processes (internal/fleet) and
// the -src source addresses, each upgraded and, unless -greeting=false
// (rawecho), greeted; every connection keeps reading so that one the
// server drops is counted; after -hold the server is sampled and every
// connection closed.
//
// What it writes: a table on stdout and one line "RESULT {json}" (the
// Result struct: rss_per_conn_bytes, fds_per_conn, dial_rate,
// server_before/after/after_close, ...). It keeps no file; compare
// -workload connections keeps compare-connections.{json,md,png}.
package connections
