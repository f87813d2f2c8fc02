package server

import (
	"os"
	"runtime"
)

// SetProcs gives the runtime one P per worker on top of its default (the
// cores, or the cgroup's CPU quota) and returns the GOMAXPROCS in force.
// Call it once at the start of the program, before New, with the
// Config.Workers you will use (0 or less: the default, one per P). An
// explicit GOMAXPROCS in the environment wins and is left alone.
//
// Why: a worker waits in epoll_wait(2) holding its P; when no P is idle
// the runtime takes the waiting workers' Ps back and every wake-up has to
// find one again (see "Processors" in the package documentation).
func SetProcs(workers int) int {
	base := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" {
		return base
	}
	if workers <= 0 {
		workers = base
	}
	runtime.GOMAXPROCS(base + workers)
	return base + workers
}
