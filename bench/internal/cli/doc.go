// Package cli holds what every wsload subcommand does the same way with its
// command line and its output: parsing a flag set that takes no positional
// arguments, telling whether a flag was given, and the two writers the
// human table (Stdout) and the progress lines (Stderr) go to.
//
// It knows no workload; the workloads' own flags live in their packages.
package cli
