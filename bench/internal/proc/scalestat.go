package proc

// Machine-wide memory and socket figures for wsload scale, from
// /proc/meminfo and /proc/net/sockstat (server.ReadTCPMemory), and cheap per-process samples
// (RSS and CPU only: listing /proc/PID/fd of a process holding 19,000
// descriptors costs milliseconds, so it is done once per step).

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/wsmill/wsmill/server"
)

// sysMem is one sample of the machine's memory and TCP sockets.
type SysMem struct {
	MemAvailable int64 `json:"mem_available_bytes"`
	MemFree      int64 `json:"mem_free_bytes"`
	Slab         int64 `json:"slab_bytes"`       // kernel objects: socket, tcp_sock, file, dentry, epitem...
	SUnreclaim   int64 `json:"sunreclaim_bytes"` // the part of Slab the kernel cannot drop
	TCPInuse     int64 `json:"tcp_inuse"`        // TCP sockets in use (both ends on loopback)
	TCPOrphan    int64 `json:"tcp_orphan"`
	TCPTimeWait  int64 `json:"tcp_tw"`
	TCPMemPages  int64 `json:"tcp_mem_pages"` // pages in TCP socket buffers (against net.ipv4.tcp_mem)
	SocketsUsed  int64 `json:"sockets_used"`
}

// readSysMem samples /proc/meminfo and /proc/net/sockstat.
func ReadSysMem() (SysMem, error) {
	var m SysMem
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "MemAvailable":
			m.MemAvailable = kb << 10
		case "MemFree":
			m.MemFree = kb << 10
		case "Slab":
			m.Slab = kb << 10
		case "SUnreclaim":
			m.SUnreclaim = kb << 10
		}
	}
	// "sockets: used 11" / "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 32",
	// read by the same parser as the server's own kernel figures.
	t, err := server.ReadTCPMemory()
	if err != nil {
		return m, err
	}
	m.SocketsUsed, m.TCPInuse, m.TCPOrphan, m.TCPTimeWait, m.TCPMemPages = t.Sockets, t.InUse, t.Orphans, t.TimeWait, t.Pages
	return m, nil
}

// readRSS returns a process's VmRSS in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.Index(s, "VmRSS:")
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	v, _, _ := strings.Cut(s[i+len("VmRSS:"):], "\n")
	kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return kb << 10, err
}

// sumRSS and sumCPU add up a set of processes; a process that is gone
// counts as an error.
func SumRSS(pids []int) (int64, error) {
	var t int64
	for _, p := range pids {
		r, err := RSS(p)
		if err != nil {
			return t, err
		}
		t += r
	}
	return t, nil
}

func SumCPU(pids []int) (float64, error) {
	var t float64
	for _, p := range pids {
		c, err := CPU(p)
		if err != nil {
			return t, err
		}
		t += c
	}
	return t, nil
}

// countFDs is the number of open descriptors of a process.
func CountFDs(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// cpuBusy returns the seconds all CPUs have spent busy (everything but
// idle and iowait) since boot, from /proc/stat: with the servers' and
// clients' own CPU it shows how much other work shared the machine.
func CPUBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is already in user
			busy += n
		}
	}
	return float64(busy) / float64(ClockTicks()), nil
}

// tcpCounters are the kernel's TCP counters that tell why connects or
// segments failed: the accept queue (ListenOverflows, ListenDrops), SYN
// retransmits, memory pressure (TCPMemoryPressures, TCPAbortOnMemory,
// PruneCalled), resets.
var tcpCounters = map[string]bool{
	"ListenOverflows": true, "ListenDrops": true, "TCPSynRetrans": true, "TCPTimeouts": true,
	"TCPMemoryPressures": true, "TCPAbortOnMemory": true, "PruneCalled": true, "TCPBacklogDrop": true,
	"TCPReqQFullDrop": true, "TCPReqQFullDoCookies": true, "SyncookiesSent": true, "TCPRcvQDrop": true,
	"AttemptFails": true, "EstabResets": true, "RetransSegs": true, "OutRsts": true, "TCPAbortOnTimeout": true,
	"TCPFromZeroWindowAdv": true, "TCPToZeroWindowAdv": true, "TCPWinProbe": true,
}

// readTCPCounters reads tcpCounters from /proc/net/netstat and /proc/net/snmp
// (pairs of lines: "TcpExt: Name..." then "TcpExt: value...").
func ReadTCPCounters() (map[string]int64, error) {
	out := map[string]int64{}
	for _, p := range []string{"/proc/net/netstat", "/proc/net/snmp"} {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) != len(vals) || len(names) == 0 || (names[0] != "TcpExt:" && names[0] != "Tcp:") {
				continue
			}
			for j := 1; j < len(names); j++ {
				if tcpCounters[names[j]] {
					out[names[j]], _ = strconv.ParseInt(vals[j], 10, 64)
				}
			}
		}
	}
	return out, nil
}

// counterDelta is after − before, keeping only the counters that moved.
func CounterDelta(before, after map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// socketCaches are the slab caches that grow with each TCP socket and its
// descriptor and epoll registration.
var SocketCaches = []string{"TCP", "sock_inode_cache", "filp", "dentry", "eventpoll_epi", "eventpoll_pwq"}

// readSlabCaches returns, for each of socketCaches present in
// /proc/slabinfo (root only), the active objects and their size.
func ReadSlabCaches() (map[string][2]int64, error) {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, c := range SocketCaches {
		want[c] = true
	}
	out := map[string][2]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !want[f[0]] {
			continue
		}
		n, err1 := strconv.ParseInt(f[1], 10, 64)
		sz, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 == nil && err2 == nil {
			out[f[0]] = [2]int64{n, sz}
		}
	}
	return out, nil
}
