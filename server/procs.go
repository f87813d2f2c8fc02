package server

import (
	"os"
	"runtime"
	"sync"
)

// procs remembers what SetProcs did, so that the default worker count is
// the runtime's default GOMAXPROCS whether or not SetProcs raised it.
var procs struct {
	mu     sync.Mutex
	base   int // GOMAXPROCS before SetProcs raised it
	raised int // the GOMAXPROCS SetProcs set; 0 until it did
}

// DefaultWorkers is the worker count used when Config.Workers is 0: one
// per P of the runtime's default GOMAXPROCS (the cores, or the cgroup's CPU
// quota; an explicit GOMAXPROCS in the environment or set by the program
// counts too). SetProcs's extra Ps are not counted: while GOMAXPROCS is
// what SetProcs made it, this is the value from before SetProcs.
func DefaultWorkers() int {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	return defaultProcsLocked()
}

func defaultProcsLocked() int {
	n := runtime.GOMAXPROCS(0)
	if procs.raised != 0 && n == procs.raised {
		return procs.base
	}
	return n
}

// SetProcs gives the runtime one P per worker on top of its default (the
// cores, or the cgroup's CPU quota) and returns the GOMAXPROCS in force.
// Call it once at the start of the program, before New, with the
// Config.Workers you will use (0 or less: the default, DefaultWorkers,
// which SetProcs does not change). An explicit GOMAXPROCS in the
// environment wins and is left alone. A second call starts from the same
// default, so it does not add its Ps twice.
//
// Why: a worker waits in epoll_wait(2) holding its P; when no P is idle
// the runtime takes the waiting workers' Ps back and every wake-up has to
// find one again (see "Processors" in the package documentation).
func SetProcs(workers int) int {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	base := defaultProcsLocked()
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	if workers <= 0 {
		workers = base
	}
	runtime.GOMAXPROCS(base + workers)
	procs.base, procs.raised = base, base+workers
	return base + workers
}
