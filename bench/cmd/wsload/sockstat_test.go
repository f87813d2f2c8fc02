package main

import (
	"strings"
	"testing"
)

func TestParseSockstat(t *testing.T) {
	// /proc/net/sockstat as Linux 6.x prints it.
	const full = `sockets: used 4016
TCP: inuse 4003 orphan 2 tw 17 alloc 4004 mem 391
UDP: inuse 0 mem 0
UDPLITE: inuse 0
RAW: inuse 0
FRAG: inuse 0 memory 0
`
	tests := []struct {
		name    string
		in      string
		want    tcpMem
		wantErr string
	}{
		{"full", full, tcpMem{InUse: 4003, Orphan: 2, TW: 17, Mem: 391}, ""},
		{"TCP line only, no newline", "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 0", tcpMem{InUse: 1}, ""},
		{"unknown keys ignored", "TCP: inuse 3 orphan 1 tw 0 alloc 4 mem 9 future 7\n", tcpMem{InUse: 3, Orphan: 1, Mem: 9}, ""},
		{"UDP mem is not TCP mem", "UDP: inuse 0 mem 50\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 5\n", tcpMem{InUse: 1, Mem: 5}, ""},
		{"no TCP line", "sockets: used 3\nUDP: inuse 0 mem 0\n", tcpMem{}, "no TCP line"},
		{"no mem", "TCP: inuse 1 orphan 0 tw 0 alloc 1\n", tcpMem{}, "without orphan and mem"},
		{"not a number", "TCP: inuse 1 orphan x tw 0 alloc 1 mem 0\n", tcpMem{}, "orphan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSockstat([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v; want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTCPMemLimits(t *testing.T) {
	lo, p, hi, err := parseTCPMemLimits([]byte("287907\t383878\t575814\n"))
	if err != nil || lo != 287907 || p != 383878 || hi != 575814 {
		t.Fatalf("got %d %d %d, %v; want 287907 383878 575814", lo, p, hi, err)
	}
	for _, bad := range []string{"", "1 2", "1 2 3 4", "1 two 3"} {
		if _, _, _, err := parseTCPMemLimits([]byte(bad)); err == nil {
			t.Errorf("parseTCPMemLimits(%q): no error", bad)
		}
	}
}

func TestReadTCPMem(t *testing.T) {
	m, err := readTCPMem()
	if err != nil {
		t.Skipf("no /proc/net/sockstat here: %v", err)
	}
	if m.Pressure <= 0 || m.Min > m.Pressure || m.Pressure > m.Max || m.InUse < 0 || m.Mem < 0 {
		t.Fatalf("implausible: %+v", m)
	}
}

func TestTCPMemSlack(t *testing.T) {
	tests := []struct {
		rsv, cpus int
		want      int64
	}{
		{256, 2, 1280}, // this box: 5 MiB
		{256, 64, 33024},
		{0, 8, 256}, // no per-CPU batching: the other processes' share only
	}
	for _, tt := range tests {
		if got := tcpMemSlack(tt.rsv, tt.cpus); got != tt.want {
			t.Errorf("tcpMemSlack(%d, %d) = %d; want %d", tt.rsv, tt.cpus, got, tt.want)
		}
	}
	if defaultTCPMemSlack() < 256 {
		t.Errorf("defaultTCPMemSlack() = %d; want at least 256", defaultTCPMemSlack())
	}
}

func TestTCPMemBack(t *testing.T) {
	base := tcpMem{InUse: 40, Orphan: 2, TW: 10, Mem: 300}
	tests := []struct {
		name string
		now  tcpMem
		want bool
	}{
		{"same", base, true},
		{"below", tcpMem{Orphan: 0, Mem: 0}, true},
		{"at the slacks", tcpMem{Orphan: 2 + 16, Mem: 300 + 1280}, true},
		{"one orphan over", tcpMem{Orphan: 2 + 17, Mem: 300}, false},
		{"one page over", tcpMem{Orphan: 2, Mem: 300 + 1281}, false},
		{"inuse and tw not judged", tcpMem{InUse: 9999, Orphan: 2, TW: 9999, Mem: 300}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tcpMemBack(base, tt.now, 1280, 16); got != tt.want {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestPeakTCPMem(t *testing.T) {
	a := tcpMem{InUse: 5, Orphan: 0, TW: 9, Mem: 100, Pressure: 7}
	b := tcpMem{InUse: 3, Orphan: 4, TW: 1, Mem: 200, Pressure: 8}
	want := tcpMem{InUse: 5, Orphan: 4, TW: 9, Mem: 200, Pressure: 7}
	if got := peakTCPMem(a, b); got != want {
		t.Fatalf("got %+v; want %+v", got, want)
	}
}
