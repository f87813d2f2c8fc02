// Package stats is the arithmetic behind every published figure: medians
// over rounds, exact quantiles of short series, the paired ratio of a
// server to the baseline over rounds run side by side, and the HDR
// histograms the workloads record latencies in. It reads no clock and
// touches no network, so its tests pin the numbers exactly.
//
// Why paired ratios: on a shared two-core machine a slow minute moves
// both servers of a round together. The median over rounds of (server ÷
// baseline in the same round) follows the per-round ratios; the ratio of
// the two medians can pick its numerator and denominator from different
// rounds and so mix a slow round of one with a fast round of the other.
package stats
