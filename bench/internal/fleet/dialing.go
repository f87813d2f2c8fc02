package fleet

import (
	"flag"
	"time"
)

// Dialing is how a workload's clients dial: the flags every workload with
// many connections shares, registered once here so that -procs, -src and
// the dial limits mean the same in each of them.
type Dialing struct {
	Procs       int           // client processes
	Src         string        // comma-separated source addresses, round-robin
	DialConc    int           // dials in flight per client process
	Rate        float64       // total dials per second (0: no limit)
	DialTimeout time.Duration // one connection's dial, upgrade and greeting
}

// Register defines -procs (default procs, meaning procsHelp), -src,
// -dial-concurrency, -dial-timeout and, when rate is set, -rate.
func (d *Dialing) Register(fs *flag.FlagSet, procs int, procsHelp string, rate bool) {
	fs.IntVar(&d.Procs, "procs", procs, "client processes ("+procsHelp+")")
	fs.StringVar(&d.Src, "src", "", "comma-separated source addresses, used round-robin (e.g. 127.0.0.2,127.0.0.3)")
	fs.IntVar(&d.DialConc, "dial-concurrency", 64, "dials in flight per client process")
	if rate {
		fs.Float64Var(&d.Rate, "rate", 0, "total dial rate limit in connections/s (0: as fast as the server accepts)")
	}
	fs.DurationVar(&d.DialTimeout, "dial-timeout", 10*time.Second, "timeout for one connection's dial, upgrade and greeting")
}

// Spec is the part of a worker spec the flags fill: mode, address, sources,
// dial limits; the workload adds its own fields.
func (d *Dialing) Spec(mode, addr string) Spec {
	return Spec{Mode: mode, Addr: addr, Src: ParseSrc(d.Src), DialConcurrency: d.DialConc, DialTimeout: d.DialTimeout}
}
