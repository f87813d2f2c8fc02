package proc

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
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/wsmill/wsmill/server"
)

// tcpMem is one sample of the machine's TCP memory.
type TCPMem struct {
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

// readTCPMem reads /proc/net/sockstat and /proc/sys/net/ipv4/tcp_mem
// (server.ReadTCPMemory).
func ReadTCPMem() (TCPMem, error) {
	m, err := server.ReadTCPMemory()
	return TCPMem{InUse: m.InUse, Orphan: m.Orphans, TW: m.TimeWait, Mem: m.Pages,
		Min: m.Min, Pressure: m.Pressure, Max: m.Max}, err
}

// peakTCPMem is each figure's maximum of a and b.
func PeakTCPMem(a, b TCPMem) TCPMem {
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
func TCPMemSlack(rsvPages, cpus int) int64 {
	return 2*int64(rsvPages)*int64(cpus) + 256
}

// memPcpuRsv is net.core.mem_pcpu_rsv in pages; where the sysctl does not
// exist, 256: Linux 6.0 to 6.8 batch 1 MiB per CPU without a knob (and
// older kernels not at all, where this only widens the slack).
func MemPcpuRsv() int {
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
func DefaultTCPMemSlack() int64 { return TCPMemSlack(MemPcpuRsv(), runtime.NumCPU()) }

// tcpMemBack reports whether the machine's TCP memory is back: orphans and
// pages at most their slack above the baseline. inuse and tw are reported,
// not judged: every other process's connections move them.
func TCPMemBack(base, now TCPMem, memSlack, orphanSlack int64) bool {
	return now.Orphan <= base.Orphan+orphanSlack && now.Mem <= base.Mem+memSlack
}
