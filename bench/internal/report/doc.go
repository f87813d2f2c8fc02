// Package report renders results: the RESULT line every subcommand ends
// with, the aligned tables, the files a run keeps (JSON, Markdown and a
// PNG, written the same way by every workload that keeps files), and the
// comparison report of "wsload compare": medians over rounds, ratios to a
// baseline, paired ratios, its Markdown and its plot.
//
// Rendering is pure: a Compare in, bytes out; the tests pin the ratios and
// the Markdown without a network.
package report
