// Package push is "wsload push": how regular the server's time pushes are
// over many connections, with or without slow clients among them.
//
// What it measures: for every normal connection, the gap between two
// consecutive time pushes; |gap − interval| is the push jitter (p50, p99,
// max over all gaps in the window); how many connections got every push
// (complete_pct, missing); with -slow-pct, how many slow clients the
// server let go (slow_closed) and whether the others were held up; the
// server's RSS and CPU.
//
// How: -n connections over -procs client processes (internal/fleet); a
// -slow-pct share of them (spread evenly by isSlow) never read after the
// greeting but send -slow-size bytes every -slow-every into a -slow-rcvbuf
// socket; the others read and time each push by its arrival. After one
// unmeasured interval the window opens in every worker at once for
// -duration; each worker sends its gap histogram (HdrHistogram) and counts,
// merged here.
//
// What it writes: a table on stdout and one line "RESULT {json}" (the
// Result struct). It keeps no file; compare -workload push keeps
// compare-push.{json,md,png}.
package push
