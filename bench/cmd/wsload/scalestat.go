package main

// Machine-wide memory and socket figures for wsload scale, from
// /proc/meminfo and /proc/net/sockstat, and cheap per-process samples
// (RSS and CPU only: listing /proc/PID/fd of a process holding 19,000
// descriptors costs milliseconds, so it is done once per step).

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// sysMem is one sample of the machine's memory and TCP sockets.
type sysMem struct {
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
func readSysMem() (sysMem, error) {
	var m sysMem
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
	b, err = os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return m, err
	}
	// "sockets: used 11" / "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 32"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			n, _ := strconv.ParseInt(f[i+1], 10, 64)
			switch f[0] + f[i] {
			case "sockets:used":
				m.SocketsUsed = n
			case "TCP:inuse":
				m.TCPInuse = n
			case "TCP:orphan":
				m.TCPOrphan = n
			case "TCP:tw":
				m.TCPTimeWait = n
			case "TCP:mem":
				m.TCPMemPages = n
			}
		}
	}
	return m, nil
}

// readRSS returns a process's VmRSS in bytes.
func readRSS(pid int) (int64, error) {
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
func sumRSS(pids []int) (int64, error) {
	var t int64
	for _, p := range pids {
		r, err := readRSS(p)
		if err != nil {
			return t, err
		}
		t += r
	}
	return t, nil
}

func sumCPU(pids []int) (float64, error) {
	var t float64
	for _, p := range pids {
		c, err := procCPU(p)
		if err != nil {
			return t, err
		}
		t += c
	}
	return t, nil
}

// countFDs is the number of open descriptors of a process.
func countFDs(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}
