//go:build linux && !race

package server

import (
	"runtime"
	"strconv"
	"syscall"
	"testing"
)

// TestAllocsPublish: a publish of a prepared frame to a topic that exists
// allocates nothing; one to a topic nobody is in neither.
func TestAllocsPublish(t *testing.T) {
	r := newAllocRig(t)
	const n = 50
	var peers []int
	for range n {
		c, peer := r.open(t)
		if !r.s.Subscribe(r.s.handle(c), "room") {
			t.Fatal("Subscribe failed")
		}
		peers = append(peers, peer)
	}
	f := NewFrame(OpBinary, []byte("tick"))
	buf := make([]byte, f.Len())
	allocs := testing.AllocsPerRun(100, func() {
		if got := r.s.Publish("room", f, LatestOnly); got != (FanoutResult{Written: n}) {
			t.Fatalf("Publish: got %+v; want %d written", got, n)
		}
		for _, p := range peers {
			drain(t, p, buf, len(buf))
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per publish to %d subscribers; want 0", allocs, n)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if got := r.s.Publish("nobody", f, LatestOnly); got != (FanoutResult{}) {
			t.Fatalf("Publish to nobody: got %+v", got)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per publish to an absent topic; want 0", allocs)
	}
}

// TestAllocsSubscribe: subscribing a connection to a topic that exists,
// twice, and unsubscribing it allocate nothing once the connection has
// had a subscription (its topic list keeps its capacity).
func TestAllocsSubscribe(t *testing.T) {
	r := newAllocRig(t)
	a, _ := r.open(t)
	b, _ := r.open(t)
	ha, hb := r.s.handle(a), r.s.handle(b)
	r.s.Subscribe(ha, "room") // keeps the topic
	r.s.Subscribe(hb, "room")
	r.s.Unsubscribe(hb, "room")
	allocs := testing.AllocsPerRun(200, func() {
		if !r.s.Subscribe(hb, "room") || !r.s.Subscribe(hb, "room") {
			t.Fatal("Subscribe failed")
		}
		if r.s.Subscribers("room") != 2 {
			t.Fatal("not subscribed")
		}
		if !r.s.Unsubscribe(hb, "room") || r.s.Unsubscribe(hb, "room") {
			t.Fatal("Unsubscribe: want true, then false")
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per subscribe and unsubscribe; want 0", allocs)
	}
}

// TestTopicChurnHeap churns connections through thousands of topics and
// checks that the topic table and the heap come back to where they were:
// a connection leaves every topic at its close, and an empty topic is
// gone (its map entry too: the shard maps shrink).
func TestTopicChurnHeap(t *testing.T) {
	r := newAllocRig(t)
	names := make([]string, 5000)
	for i := range names {
		names[i] = "topic-" + strconv.Itoa(i)
	}
	round := func(k int) {
		var conns []*conn
		var peers []int
		for i := range 200 {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			peers = append(peers, fds[1])
			c := r.s.table.acquire(fds[0])
			r.s.live.Add(1)
			c.sched.Store(schedIdle)
			c.phase = phaseOpen
			r.s.open.Add(1)
			r.s.wheel.add(c)
			h := r.s.handle(c)
			for j := range 50 {
				if !r.s.Subscribe(h, names[(i*50+j*7+k)%len(names)]) {
					t.Fatal("Subscribe failed")
				}
			}
			for j := range 10 { // some leave by themselves
				r.s.Unsubscribe(h, names[(i*50+j*7+k)%len(names)])
			}
			conns = append(conns, c)
		}
		if r.s.topics.n.Load() == 0 || r.s.topics.subs.Load() != 200*40 {
			t.Fatalf("round %d: %d topics, %d subscriptions; want 8000 subscriptions", k, r.s.topics.n.Load(), r.s.topics.subs.Load())
		}
		for i, c := range conns {
			r.s.closeConn(c)
			syscall.Close(peers[i]) // the next round reuses the numbers and the structs
		}
		if n, subs := r.s.topics.n.Load(), r.s.topics.subs.Load(); n != 0 || subs != 0 {
			t.Fatalf("round %d: %d topics, %d subscriptions left after every close; want none", k, n, subs)
		}
		for i := range r.s.topics.shards {
			if sh := &r.s.topics.shards[i]; len(sh.m) != 0 || sh.peak > 8 {
				t.Fatalf("round %d: shard %d holds %d topics (peak %d); want an empty map", k, i, len(sh.m), sh.peak)
			}
		}
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC() // pools are emptied over two cycles
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	round(0) // the table's conn structs, made once per descriptor number
	before := heap()
	for k := 1; k <= 5; k++ {
		round(k)
	}
	after := heap()
	runtime.KeepAlive(r) // the server, its table and its buffers are in both figures
	runtime.KeepAlive(names)
	t.Logf("heap %d bytes before, %d after", before, after)
	// 200 connections × 40 subscriptions: about 1 MB while they lived.
	if after > before+64<<10 {
		t.Errorf("heap %d bytes before, %d after five rounds; want within 64 KiB", before, after)
	}
}
