// Package soak is "wsload soak" (and "make soak"): minutes of good
// clients mixed with eight hostile behaviours, then proof that the server
// served every good client and gave back what the others took.
//
// What it measures: per good client, that it was served (greeting, every
// echo within -echo-timeout, no push gap over 2 × -interval + -push-slack);
// per hostile behaviour (hog, http-hold, burst-fin, slowloris, no-read,
// reset, invalid, idle, stall; soakworker.go's classInfo) how the server
// ended it and how fast; the server's fds, RSS, VmData, threads and
// CLOSE_WAIT sockets from /proc over the run; the machine's TCP orphans and
// pages from /proc/net/sockstat at the start, during and at the end.
//
// How: the slots run in -procs client processes (internal/fleet, mode
// "soak"); each slot loops over fresh connections of its class until the
// window ends (soakworker.go, soakbad.go: one method per behaviour). The
// parent samples the server every -sample and, after the window, once a
// second for up to -settle until the fds are back at the baseline; the
// judging rules are in soak.go's file comment and soakVerdict.
//
// What it writes: the tables on stdout, one line "RESULT {json}" (the
// soakResult struct: verdict PASS or FAIL with its reasons), and a
// non-zero exit unless the verdict is PASS. It keeps no file.
package soak
