package main

// The machine's TCP memory, from /proc/net/sockstat and
// /proc/sys/net/ipv4/tcp_mem (Linux only).
//
// A socket's buffers are the kernel's memory, not the process's: VmRSS
// never shows them, and a socket closed gracefully with bytes still unsent
// lives on as an orphan (FIN-WAIT-1, for as long as the peer answers the
// zero-window probes) holding them, after its descriptor and even its
// process are gone. The soak samples these counters to see that too.
//
// They are the machine's, shared with every other process: "mem" (pages
// of TCP socket buffers) and "orphan" are counted over all network
// namespaces, "inuse" over this one. So the soak judges them with a slack
// (tcpMemSlack, -tcp-orphan-slack).

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// tcpMem is one sample of the machine's TCP memory.
type tcpMem struct {
	InUse  int64 `json:"inuse"`     // TCP sockets in this namespace, TIME_WAIT aside (listeners included)
	Orphan int64 `json:"orphan"`    // closed by their process, still alive in the kernel
	TW     int64 `json:"tw"`        // TIME_WAIT (no buffers)
	Mem    int64 `json:"mem_pages"` // pages allocated to TCP socket buffers

	// tcp_mem: past Pressure the kernel starts to shrink buffers, past
	// Max it refuses to allocate (and kills orphans first).
	Min      int64 `json:"tcp_mem_min"`
	Pressure int64 `json:"tcp_mem_pressure"`
	Max      int64 `json:"tcp_mem_max"`
}

// readTCPMem reads /proc/net/sockstat and /proc/sys/net/ipv4/tcp_mem.
func readTCPMem() (tcpMem, error) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return tcpMem{}, err
	}
	m, err := parseSockstat(b)
	if err != nil {
		return m, err
	}
	if b, err = os.ReadFile("/proc/sys/net/ipv4/tcp_mem"); err != nil {
		return m, err
	}
	m.Min, m.Pressure, m.Max, err = parseTCPMemLimits(b)
	return m, err
}

// parseSockstat reads the TCP line of /proc/net/sockstat:
//
//	TCP: inuse 12 orphan 0 tw 3 alloc 14 mem 2
func parseSockstat(b []byte) (tcpMem, error) {
	var m tcpMem
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "TCP:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		seen := 0
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return m, fmt.Errorf("/proc/net/sockstat: TCP %s %q: %w", f[i], f[i+1], err)
			}
			switch f[i] {
			case "inuse":
				m.InUse = v
			case "orphan":
				m.Orphan, seen = v, seen|1
			case "tw":
				m.TW = v
			case "mem":
				m.Mem, seen = v, seen|2
			}
		}
		if seen != 3 {
			return m, fmt.Errorf("/proc/net/sockstat: TCP line %q without orphan and mem", line)
		}
		return m, nil
	}
	return m, fmt.Errorf("/proc/net/sockstat: no TCP line")
}

// parseTCPMemLimits reads /proc/sys/net/ipv4/tcp_mem: min, pressure and
// max, in pages.
func parseTCPMemLimits(b []byte) (lo, pressure, hi int64, err error) {
	f := bytes.Fields(b)
	if len(f) != 3 {
		return 0, 0, 0, fmt.Errorf("tcp_mem %q: want 3 numbers", b)
	}
	var v [3]int64
	for i := range f {
		if v[i], err = strconv.ParseInt(string(f[i]), 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("tcp_mem %q: %w", b, err)
		}
	}
	return v[0], v[1], v[2], nil
}

// peakTCPMem is each figure's maximum of a and b.
func peakTCPMem(a, b tcpMem) tcpMem {
	a.InUse, a.Orphan, a.TW, a.Mem = max(a.InUse, b.InUse), max(a.Orphan, b.Orphan), max(a.TW, b.TW), max(a.Mem, b.Mem)
	return a
}

// tcpMemSlack is how many pages of TCP memory the end may be above the
// baseline and still count as back. The kernel keeps the counter per CPU
// and folds a CPU's share into the total only once it passes
// net.core.mem_pcpu_rsv pages (256, 1 MiB, by default), either way: a
// reading of the total is off by up to rsv × CPUs, and the difference of
// two readings of the same state by twice that. On top of it 256 pages
// (1 MiB) for the other processes on the box, whose sockets share the
// counter. 2 CPUs: 1,280 pages, 5 MiB. A leak of the size a stall client
// made a server without the reset pin (about 1,000 pages each, five stall
// slots by default) is well above it.
func tcpMemSlack(rsvPages, cpus int) int64 {
	return 2*int64(rsvPages)*int64(cpus) + 256
}

// memPcpuRsv is net.core.mem_pcpu_rsv in pages; where the sysctl does not
// exist, 256: Linux 6.0 to 6.8 batch 1 MiB per CPU without a knob (and
// older kernels not at all, where this only widens the slack).
func memPcpuRsv() int {
	b, err := os.ReadFile("/proc/sys/net/core/mem_pcpu_rsv")
	if err != nil {
		return 256
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 256
	}
	return n
}

// defaultTCPMemSlack is tcpMemSlack for this machine.
func defaultTCPMemSlack() int64 { return tcpMemSlack(memPcpuRsv(), runtime.NumCPU()) }

// tcpMemBack reports whether the machine's TCP memory is back: orphans and
// pages at most their slack above the baseline. inuse and tw are reported,
// not judged: every other process's connections move them.
func tcpMemBack(base, now tcpMem, memSlack, orphanSlack int64) bool {
	return now.Orphan <= base.Orphan+orphanSlack && now.Mem <= base.Mem+memSlack
}
