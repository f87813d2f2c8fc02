package server

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
		want    TCPMemory
		wantErr string
	}{
		{"full", full, TCPMemory{Sockets: 4016, InUse: 4003, Orphans: 2, TimeWait: 17, Alloc: 4004, Pages: 391}, ""},
		{"TCP line only, no newline", "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 0", TCPMemory{InUse: 1, Alloc: 1}, ""},
		{"unknown keys ignored", "TCP: inuse 3 orphan 1 tw 0 alloc 4 mem 9 future 7\n", TCPMemory{InUse: 3, Orphans: 1, Alloc: 4, Pages: 9}, ""},
		{"UDP mem is not TCP mem", "UDP: inuse 0 mem 50\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 5\n", TCPMemory{InUse: 1, Alloc: 1, Pages: 5}, ""},
		{"sockets line without a number", "sockets: used x\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 0\n", TCPMemory{}, "sockets"},
		{"no TCP line", "sockets: used 3\nUDP: inuse 0 mem 0\n", TCPMemory{}, "no TCP line"},
		{"no mem", "TCP: inuse 1 orphan 0 tw 0 alloc 1\n", TCPMemory{}, "without orphan and mem"},
		{"not a number", "TCP: inuse 1 orphan x tw 0 alloc 1 mem 0\n", TCPMemory{}, "orphan"},
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

func TestReadTCPMemory(t *testing.T) {
	m, err := ReadTCPMemory()
	if err != nil || m.Max <= 0 || m.PageSize <= 0 {
		t.Errorf("ReadTCPMemory: got %+v, %v; want the machine's tcp_mem and page size", m, err)
	}
}
