package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// The fixed cost of a Server: what New and Serve cost before any client,
// and after one client per port has come and gone, for 1 Server on 1 port,
// 50 Servers on 50 ports and 1 Server on 50 listeners, at two open-file
// limits. Each case runs in a child process of the test binary, so its RSS
// is its own. Run with -v for the table; WSMILL_FIXEDCOST_PROF=dir writes a
// heap profile of each case there.

// fixedCost is one child's report.
type fixedCost struct {
	Mode    string `json:"mode"`
	N       int    `json:"n"`
	Rlimit  uint64 `json:"rlimit"`
	Workers int    `json:"workers"`
	// Bytes: heap in use after a GC (HeapAlloc) and VmRSS, before any
	// Server, after New+Serve, and after one client per port.
	HeapBase, HeapStart, HeapAfter int64
	RSSBase, RSSStart, RSSAfter    int64
	Err                            string `json:"err,omitempty"`
}

const fixedCostEnv = "WSMILL_FIXEDCOST_CHILD"

func TestFixedCost(t *testing.T) {
	if spec := os.Getenv(fixedCostEnv); spec != "" {
		fixedCostChild(spec)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	low, high := uint64(1024), rl.Max
	if high < 8192 {
		t.Fatalf("hard open-file limit %d; the test compares 1024 with at least 8192", high)
	}
	cases := []struct {
		mode string
		n    int
		lim  uint64
	}{
		{"servers", 1, low}, {"servers", 1, high},
		{"servers", 50, low}, {"servers", 50, high},
		{"listeners", 50, low}, {"listeners", 50, high},
	}
	res := map[string]fixedCost{}
	for _, c := range cases {
		r := runFixedCost(t, c.mode, c.n, c.lim)
		res[fmt.Sprintf("%s/%d/%d", c.mode, c.n, c.lim)] = r
		if r.Err != "" {
			t.Errorf("%s n=%d rlimit=%d: %s", c.mode, c.n, c.lim, r.Err)
			continue
		}
		t.Logf("%-9s n=%-2d rlimit=%-6d workers=%d  heap: +%7.1f KiB at start, +%7.1f KiB after a client per port;  RSS: +%7.1f KiB at start, +%7.1f KiB after (base %.1f MiB)",
			c.mode, c.n, c.lim, r.Workers,
			kib(r.HeapStart-r.HeapBase), kib(r.HeapAfter-r.HeapBase),
			kib(r.RSSStart-r.RSSBase), kib(r.RSSAfter-r.RSSBase), float64(r.RSSBase)/(1<<20))
	}
	if t.Failed() {
		return
	}
	// What a Server costs at start must not grow with the descriptor
	// range: the same Server at 1024 and at the hard limit.
	one := func(lim uint64) int64 { r := res[fmt.Sprintf("servers/1/%d", lim)]; return r.HeapStart - r.HeapBase }
	if d := one(high) - one(low); d > 16<<10 {
		t.Errorf("a Server's heap at start grew by %.1f KiB from rlimit %d to %d; want at most 16 KiB", kib(d), low, high)
	}
	// A listener costs a Serve goroutine and its records, not a Server.
	l := res[fmt.Sprintf("listeners/50/%d", high)]
	if per := (l.HeapStart - l.HeapBase - one(high)) / 49; per > 8<<10 {
		t.Errorf("each extra listener costs %.1f KiB of heap at start; want at most 8 KiB", kib(per))
	}
}

func kib(b int64) float64 { return float64(b) / 1024 }

func runFixedCost(t *testing.T, mode string, n int, lim uint64) fixedCost {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFixedCost$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", fixedCostEnv, mode, n, lim))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		if line, ok := strings.CutPrefix(sc.Text(), "FIXEDCOST "); ok {
			var r fixedCost
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("%s n=%d: child gave no report (%v): %s%s", mode, n, err, out, stderr.Bytes())
	return fixedCost{}
}

// fixedCostChild measures one case and prints its report.
func fixedCostChild(spec string) {
	runtime.MemProfileRate = 512
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[1])
	lim, _ := strconv.ParseUint(parts[2], 10, 64)
	r := fixedCost{Mode: parts[0], N: n, Rlimit: lim}
	defer func() {
		b, _ := json.Marshal(r)
		fmt.Printf("FIXEDCOST %s\n", b)
	}()
	rl := syscall.Rlimit{Cur: lim, Max: lim}
	var cur syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur)
	rl.Max = cur.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		r.Err = err.Error()
		return
	}
	r.HeapBase, r.RSSBase = memNow()

	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.Err = err.Error()
			return
		}
		lns[i] = ln
	}
	var servers []*Server
	served := make(chan error, n)
	for i, ln := range lns {
		if r.Mode == "servers" || i == 0 {
			s, err := New(testConfig(Config{}))
			if err != nil {
				r.Err = err.Error()
				return
			}
			servers = append(servers, s)
		}
		s := servers[len(servers)-1]
		go func() { served <- s.Serve(ln) }()
	}
	r.Workers = servers[0].Config().Workers
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-served:
		r.Err = "Serve: " + err.Error()
		return
	default:
	}
	r.HeapStart, r.RSSStart = memNow()
	writeFixedCostProfile(r, "start")

	for _, ln := range lns {
		c, _, err := gorilla.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/ws", nil)
		if err != nil {
			r.Err = err.Error()
			return
		}
		if err := c.WriteMessage(gorilla.TextMessage, []byte("hi")); err != nil {
			r.Err = err.Error()
			return
		}
		for range 2 { // the greeting, the echo
			if _, _, err := c.ReadMessage(); err != nil {
				r.Err = err.Error()
				return
			}
		}
		c.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		live := int64(0)
		for _, s := range servers {
			live += s.live.Load()
		}
		if live == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.Err = "connections did not close"
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.HeapAfter, r.RSSAfter = memNow()
	writeFixedCostProfile(r, "after")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(ctx)
	}
}

func memNow() (heap, rss int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				rss = kb << 10
			}
		}
	}
	return int64(ms.HeapAlloc), rss
}

func writeFixedCostProfile(r fixedCost, when string) {
	dir := os.Getenv("WSMILL_FIXEDCOST_PROF")
	if dir == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s/heap-%s-%d-%d-%s.pprof", dir, r.Mode, r.N, r.Rlimit, when))
	if err != nil {
		return
	}
	defer f.Close()
	pprof.WriteHeapProfile(f)
}
