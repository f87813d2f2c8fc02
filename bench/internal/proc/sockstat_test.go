package proc

import (
	"testing"
)

func TestReadTCPMem(t *testing.T) {
	m, err := ReadTCPMem()
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
		if got := TCPMemSlack(tt.rsv, tt.cpus); got != tt.want {
			t.Errorf("tcpMemSlack(%d, %d) = %d; want %d", tt.rsv, tt.cpus, got, tt.want)
		}
	}
	if DefaultTCPMemSlack() < 256 {
		t.Errorf("defaultTCPMemSlack() = %d; want at least 256", DefaultTCPMemSlack())
	}
}

func TestTCPMemBack(t *testing.T) {
	base := TCPMem{InUse: 40, Orphan: 2, TW: 10, Mem: 300}
	tests := []struct {
		name string
		now  TCPMem
		want bool
	}{
		{"same", base, true},
		{"below", TCPMem{Orphan: 0, Mem: 0}, true},
		{"at the slacks", TCPMem{Orphan: 2 + 16, Mem: 300 + 1280}, true},
		{"one orphan over", TCPMem{Orphan: 2 + 17, Mem: 300}, false},
		{"one page over", TCPMem{Orphan: 2, Mem: 300 + 1281}, false},
		{"inuse and tw not judged", TCPMem{InUse: 9999, Orphan: 2, TW: 9999, Mem: 300}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TCPMemBack(base, tt.now, 1280, 16); got != tt.want {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestPeakTCPMem(t *testing.T) {
	a := TCPMem{InUse: 5, Orphan: 0, TW: 9, Mem: 100, Pressure: 7}
	b := TCPMem{InUse: 3, Orphan: 4, TW: 1, Mem: 200, Pressure: 8}
	want := TCPMem{InUse: 5, Orphan: 4, TW: 9, Mem: 200, Pressure: 7}
	if got := PeakTCPMem(a, b); got != want {
		t.Fatalf("got %+v; want %+v", got, want)
	}
}
