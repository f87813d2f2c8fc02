// Package compare is "wsload compare": one workload against several
// servers, alternating them over rounds, and "wsload plot", which redraws
// or recomputes a comparison from its JSON.
//
// What it measures: whatever the workload measures, per server, as the
// median over rounds of each of the workload's metrics, the ratio of those
// medians to a baseline server (wsmill unless -baseline says otherwise),
// and the paired ratios: in each round the server's figure over the
// baseline's from the same round, then the median of those and the number
// of rounds the server did better. A shared machine drifts (another
// tenant for a minute); the drift moves both figures of a round together,
// so the paired ratio is the one to quote.
//
// How: every server is built once (the repository root, a bench/peers
// directory, or a given bin:PATH), then each round starts each server in
// turn on a fresh loopback port (internal/target), runs the workload's
// Run against it, stops it, and pauses. A workload takes part through the
// Workload interface, registered by cmd/wsload/main.go; compare knows no
// workload by name. A workload that needs pushes or broadcasts says so
// (Needs), and servers that cannot do it (rawecho) sit it out.
//
// What it writes: DIR/compare-WORKLOAD.json (every run's whole result,
// medians, ratios, paired ratios and wins), .md (the table) and .png (the
// main metric per round and server), through internal/report; then the
// table on stdout and one line "RESULT {json}" with the medians and ratios.
package compare
