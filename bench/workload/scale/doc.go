// Package scale is "wsload scale": the whole box, up to a million
// connections, with every greeting and every push of every connection
// checked.
//
// What it measures, at each step of -step connections up to -n: how many
// connections opened and how fast; for each connection whether it got
// every push in a -hold window (missed, stale) and the push lag |gap −
// interval| (p50, p99, max) and phase lag; the servers' RSS per connection,
// the kernel's slab and TCP buffer memory per connection, the client
// processes' RSS; CPU per push of servers, clients and the rest of the
// machine; MemAvailable, which stops the ramp before it runs out. Then how
// the servers shut down (every client sees Close 1001) and their counters.
//
// How: -servers wsmill processes (built from the repository root, or
// -server-bin) share one port with -reuseport (scaleproc.go); client
// processes ("wsload __scale", WorkerMain, Linux only) each run one epoll
// loop over raw non-blocking sockets (scaleclient_linux.go: no goroutine
// per connection; its frame reader sizes frames with wsclient.FrameSize and
// skips what it does not need) from the 127.0.0.2... source addresses;
// the parent (scale.go) drives steps and windows over the clients' stdin
// and merges their stdout events.
//
// What it writes: DIR/scale.json (the whole result), scale.md (the step
// table) and scale-lag.png (the push-lag CDF of each step), through
// internal/report (scaleout.go); a line per step on stderr, the table on
// stdout and one line "RESULT {json}".
package scale
