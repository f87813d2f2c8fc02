package soak

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/testpeer"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

func TestSoakPlan(t *testing.T) {
	var counts [nClasses]int
	counts[classGood], counts[classHog], counts[classIdle] = 3, 1, 2
	got := soakPlan(counts)
	want := []soakClass{classGood, classHog, classIdle, classGood, classIdle, classGood}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}

func TestParseMix(t *testing.T) {
	var base [nClasses]int
	for cl := range nClasses {
		base[cl] = 10
	}
	tests := []struct {
		name, mix string
		check     func([nClasses]int) bool
		wantErr   bool
	}{
		{"empty", "", func(c [nClasses]int) bool { return c == base }, false},
		{"names", "hog=50, burst-fin=0,good=7", func(c [nClasses]int) bool {
			return c[classHog] == 50 && c[classBurstFIN] == 0 && c[classGood] == 7 && c[classIdle] == 10
		}, false},
		{"numbers", "1=3,8=4", func(c [nClasses]int) bool { return c[classHog] == 3 && c[classIdle] == 4 }, false},
		{"stall by name", "stall=2", func(c [nClasses]int) bool { return c[classStall] == 2 && c[classIdle] == 10 }, false},
		{"stall by number", "9=0", func(c [nClasses]int) bool { return c[classStall] == 0 && c[classIdle] == 10 }, false},
		{"unknown", "nope=1", nil, true},
		{"number out of range", "10=1", nil, true},
		{"good is not a number", "0=1", nil, true},
		{"negative", "hog=-1", nil, true},
		{"no count", "hog", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMix(tt.mix, base)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v; want error %v", err, tt.wantErr)
			}
			if err == nil && !tt.check(got) {
				t.Fatalf("got %v", got)
			}
		})
	}
}

// TestSoakClassNumbers pins the -mix numbers: scripts and READMEs name
// behaviours by them, so a new one takes the next number.
func TestSoakClassNumbers(t *testing.T) {
	want := []string{"good", "hog", "http-hold", "burst-fin", "slowloris", "no-read", "reset", "invalid", "idle", "stall"}
	if int(nClasses) != len(want) {
		t.Fatalf("nClasses %d; want %d", nClasses, len(want))
	}
	for i, name := range want {
		if got := classInfo[i].name; got != name {
			t.Errorf("class %d: got %q; want %q", i, got, name)
		}
		if cl, ok := classByName(name); !ok || int(cl) != i {
			t.Errorf("classByName(%q) = %d, %v; want %d", name, cl, ok, i)
		}
	}
}

func TestSoakCounts(t *testing.T) {
	tests := []struct {
		name      string
		good, bad int
		mix       string
		stall     int
		idle      int
	}{
		{"defaults: a quarter of -bad", 200, 20, "", 5, 20},
		{"rounded up", 10, 1, "", 1, 1},
		{"no bad", 10, 0, "", 0, 0},
		{"-mix wins", 10, 20, "stall=12,idle=0", 12, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := soakCounts(tt.good, tt.bad, tt.mix)
			if err != nil {
				t.Fatal(err)
			}
			if c[classGood] != tt.good || c[classStall] != tt.stall || c[classIdle] != tt.idle || c[classHog] != tt.bad {
				t.Fatalf("got %v; want good %d, hog %d, idle %d, stall %d", c, tt.good, tt.bad, tt.idle, tt.stall)
			}
		})
	}
}

func TestStallEnded(t *testing.T) {
	const limit = 3 * time.Second
	tests := []struct {
		st    wsclient.TCPState
		after time.Duration
		how   string
		late  bool
	}{
		{wsclient.StateClose, 1100 * time.Millisecond, "RST while stalled", false},
		{wsclient.StateCloseWait, limit, "FIN while stalled", false},
		{wsclient.StateClose, limit + time.Millisecond, "RST while stalled, later than 3s", true},
		{wsclient.TCPState(4), time.Second, "TCP state 4 while stalled", false},
	}
	for _, tt := range tests {
		o := stallEnded(stallHow(tt.st)+" while stalled", tt.after, limit)
		if o.kind != kindServer || o.how != tt.how || o.late != tt.late || o.after != tt.after {
			t.Errorf("state %v after %v: got %+v; want %q, late %v", tt.st, tt.after, o, tt.how, tt.late)
		}
	}
	ss := soakSpec{CloseTimeout: time.Second, StallSlack: 2 * time.Second}
	if got := ss.stallLimit(); got != limit {
		t.Errorf("stallLimit: got %v; want %v", got, limit)
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr string
		src  []string
		ok   bool
	}{
		{"127.0.0.1:8080", nil, true},
		{"127.1.2.3:80", []string{"127.0.0.2", "127.0.0.3"}, true},
		{"10.0.0.1:80", nil, false},
		{"localhost:80", nil, false}, // an IP literal, so nothing resolves elsewhere
		{"127.0.0.1:80", []string{"192.168.1.1"}, false},
		{"[::1]:80", nil, false},
	}
	for _, tt := range tests {
		if err := checkLoopback(tt.addr, tt.src); (err == nil) != tt.ok {
			t.Errorf("checkLoopback(%q, %v) = %v; want ok %v", tt.addr, tt.src, err, tt.ok)
		}
	}
}

func TestRSSLimitAndServerBack(t *testing.T) {
	const mb = 1 << 20
	if got := rssLimit(10*mb, 20, 25); got != 30*mb { // 20 MiB > 25 % of 10 MiB
		t.Errorf("small baseline: got %d; want %d", got, 30*mb)
	}
	if got := rssLimit(200*mb, 20, 25); got != 250*mb { // 25 % of 200 MiB > 20 MiB
		t.Errorf("large baseline: got %d; want %d", got, 250*mb)
	}
	base := proc.Stat{RSS: 10 * mb, FDs: 13}
	tests := []struct {
		name string
		now  proc.Stat
		want bool
	}{
		{"same", base, true},
		{"RSS at the limit", proc.Stat{RSS: 30 * mb, FDs: 13}, true},
		{"RSS over", proc.Stat{RSS: 30*mb + 1, FDs: 13}, false},
		{"one fd more", proc.Stat{RSS: 10 * mb, FDs: 14}, false},
		{"one fd less", proc.Stat{RSS: 10 * mb, FDs: 12}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverBack(base, tt.now, rssLimit(base.RSS, 20, 25)); got != tt.want {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestSoakVerdict(t *testing.T) {
	ok := soakResult{Measured: true, Good: soakGoodResult{Started: 10, Served: 10},
		Baseline: proc.Stat{RSS: 10, FDs: 13}, After: proc.Stat{RSS: 20, FDs: 13}, RSSLimit: 20,
		TCP: soakTCP{Measured: true, Baseline: proc.TCPMem{Orphan: 1, Mem: 100}, End: proc.TCPMem{Orphan: 1, Mem: 100}, MemSlack: 1280, OrphanSlack: 16}}
	tests := []struct {
		name    string
		mod     func(*soakResult)
		verdict string
		reasons int
	}{
		{"pass", func(*soakResult) {}, "PASS", 0},
		{"good failed", func(r *soakResult) { r.Good.Failed = 1 }, "FAIL", 1},
		{"fds", func(r *soakResult) { r.After.FDs = 14 }, "FAIL", 1},
		{"rss", func(r *soakResult) { r.After.RSS = 21 }, "FAIL", 1},
		{"all", func(r *soakResult) { r.Good.Failed, r.After.FDs, r.After.RSS = 2, 20, 99 }, "FAIL", 3},
		{"not measured", func(r *soakResult) { r.Measured, r.After.FDs = false, 99 }, "PASS", 0},
		{"no good client", func(r *soakResult) { r.Good.Started = 0 }, "FAIL", 1},
		{"server bug alone", func(r *soakResult) { r.FinNotClosed = 5 }, "PASS", 0},
		{"finding", func(r *soakResult) { r.Bad = []soakBadResult{{Number: 3, Finding: "x"}} }, "PASS", 0},
		{"finding, strict", func(r *soakResult) { r.Strict, r.Bad = true, []soakBadResult{{Number: 3, Finding: "x"}} }, "FAIL", 1},
		{"strict, no finding", func(r *soakResult) { r.Strict, r.Bad = true, []soakBadResult{{Number: 3}} }, "PASS", 0},
		{"stall still established", func(r *soakResult) {
			r.Bad = []soakBadResult{{Number: int(classStall), Started: 9, ByServer: 8, GaveUp: 1}}
		}, "FAIL", 1},
		{"stall ended late", func(r *soakResult) {
			r.Bad = []soakBadResult{{Number: int(classStall), Started: 9, ByServer: 9, Late: 2, Finding: "2 ended later"}}
		}, "PASS", 0},
		{"another behaviour given up on", func(r *soakResult) {
			r.Bad = []soakBadResult{{Number: int(classIdle), Started: 9, GaveUp: 9}}
		}, "PASS", 0},
		{"TCP back within the slacks", func(r *soakResult) { r.TCP.End = proc.TCPMem{Orphan: 1 + 16, Mem: 100 + 1280} }, "PASS", 0},
		{"TCP orphans left", func(r *soakResult) { r.TCP.End.Orphan = 1 + 17 }, "FAIL", 1},
		{"TCP memory left", func(r *soakResult) { r.TCP.End.Mem = 100 + 1281 }, "FAIL", 1},
		{"TCP both", func(r *soakResult) { r.TCP.End = proc.TCPMem{Orphan: 99, Mem: 9999} }, "FAIL", 2},
		{"TCP not measured", func(r *soakResult) { r.TCP.Measured, r.TCP.End = false, proc.TCPMem{Orphan: 99, Mem: 9999} }, "PASS", 0},
		{"hog probe, strict", func(r *soakResult) {
			r.Strict, r.MaxMessage, r.Bad = true, 1<<20, []soakBadResult{{Number: 1}}
			r.HogProbe = &hogProbe{N: 20, Opened: 20, DataGrowth: 20 << 20, PerHog: 1 << 20}
		}, "FAIL", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.mod(&r)
			soakVerdict(&r)
			if r.Verdict != tt.verdict || len(r.Reasons) != tt.reasons {
				t.Fatalf("got %s %q; want %s with %d reasons", r.Verdict, r.Reasons, tt.verdict, tt.reasons)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"HTTP/1.1 200 OK\r\n", 200},
		{"HTTP/1.0 408 Request Timeout", 408},
		{"HTTP/1.1 101 Switching", 101},
		{"HTTP/1.1 20", 0},
		{"HTTP/2 200 OK\r\n", 0},
		{"", 0},
		{"\x88\x02\x03\xe8", 0},
	}
	for _, tt := range tests {
		if got := httpStatus([]byte(tt.in)); got != tt.want {
			t.Errorf("httpStatus(%q) = %d; want %d", tt.in, got, tt.want)
		}
	}
}

func TestCloseAndEndHow(t *testing.T) {
	if got := closeHow(1002); got != "Close 1002" {
		t.Errorf("got %q", got)
	}
	if got := closeHow(0); got != "Close (no code)" {
		t.Errorf("got %q", got)
	}
	if got := wsclient.CloseCode([]byte{0x03, 0xEF, 'x'}); got != 1007 {
		t.Errorf("closeCode: got %d; want 1007", got)
	}
	tests := []struct {
		err  error
		want string
	}{
		{io.EOF, "EOF"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "RST"},
		{syscall.EPIPE, "EPIPE"},
		{fmt.Errorf("%w (code 1001)", wsclient.ErrPeerClosed), "Close (code 1001)"},
		{os.ErrDeadlineExceeded, "timeout"},
	}
	for _, tt := range tests {
		if got := endHow(tt.err); got != tt.want {
			t.Errorf("endHow(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestHogFinding(t *testing.T) {
	const max = 1 << 20
	tests := []struct {
		name string
		p    *hogProbe
		want bool
	}{
		{"no probe", nil, false},
		{"nothing opened", &hogProbe{N: 20}, false},
		{"declared length committed", &hogProbe{N: 20, Opened: 20, PerHog: max + 100<<10}, true},
		{"half of it", &hogProbe{N: 20, Opened: 20, PerHog: max / 2}, true},
		{"one heap chunk over 20 hogs", &hogProbe{N: 20, Opened: 20, PerHog: (4 << 20) / 20}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hogFinding(tt.p, max) != ""; got != tt.want {
				t.Fatalf("got finding %v; want %v", got, tt.want)
			}
		})
	}
}

func TestMain(m *testing.M) { testpeer.Main(m, map[string]fleet.WorkerFunc{"soak": Worker}) }

// TestCommandFlags: a bad command line ends with a clear error before any
// connection is dialed (the address is one nothing listens on).
func TestCommandFlags(t *testing.T) {
	testpeer.FlagErrors(t, Command, []string{"-addr", "127.0.0.1:1"}, []testpeer.FlagCase{
		{"not loopback", []string{"-addr", "10.0.0.1:80"}, "loopback"},
		{"no good client", []string{"-good", "0"}, "need at least one good client (-good)"},
		{"short", []string{"-duration", "1s"}, "-duration (≥ 5s)"},
		{"zero interval", []string{"-interval", "0"}, "must be positive"},
		{"stop without pid", []string{"-stop"}, "-stop needs the server's -pid"},
		{"unknown behaviour", []string{"-mix", "nosuch=3"}, "nosuch"},
		{"stray argument", []string{"x"}, "unexpected arguments: x"},
	})
}
