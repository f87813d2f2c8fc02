// Package fanout is "wsload fanout": how long one server-wide broadcast
// (or, with -rooms, one publish to every room) takes to reach N
// connections.
//
// What it measures: for each broadcast, the delay of every connection's
// copy (arrival − send: p50, p99, max over all deliveries) and the time to
// reach the last connection (to-last p50, p99, max over broadcasts); the
// same from the read time, which adds how long this client took to get
// round to reading; broadcasts that missed an open connection, duplicates,
// late ones; the server's CPU per broadcast and its RSS.
//
// How: servers started with -fanout-interval D broadcast every D a text
// frame "F" + the unix-nanosecond time taken just before the broadcast
// starts. Client and server share one machine and one clock, so arrival −
// send is the copy's delay; arrival is the kernel's receive stamp
// (SO_TIMESTAMPNS, wsclient's stamp reader). -n connections over -procs
// client processes (internal/fleet); with -rooms R connection i joins room
// i%R (fanoutrooms.go) and the server publishes to each room. The window
// opens at one absolute time in every worker; each sends per-broadcast
// counts and latest arrivals (merged by mergeBcasts) and its histograms.
// In compare a server runs @broadcast or @rooms (compared.go's ModeFlags).
//
// What it writes: a table on stdout and one line "RESULT {json}" (the
// Result struct). It keeps no file; compare -workload fanout keeps
// compare-fanout.{json,md,png}.
package fanout
