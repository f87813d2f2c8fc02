package server

import (
	"syscall"
	"testing"
)

// TestAllocsFanoutParallel: past broadcastSerial, a Broadcast and a
// Publish share the writes with the fan-out goroutines and still allocate
// nothing per call.
func TestAllocsFanoutParallel(t *testing.T) {
	r := newAllocRigN(t, 2)
	const n = broadcastSerial + 100
	peers := make([]int, 0, n)
	for range n {
		c, p := r.open(t)
		if !r.s.Subscribe(r.s.handle(c), "all") {
			t.Fatal("Subscribe failed")
		}
		peers = append(peers, p)
	}
	f := NewFrame(OpBinary, []byte("to every one of you"))
	buf := make([]byte, f.Len())
	for _, what := range []string{"Broadcast", "Publish"} {
		check := func() {
			var got FanoutResult
			if what == "Broadcast" {
				got = r.s.Broadcast(f, Reliable)
			} else {
				got = r.s.Publish("all", f, Reliable)
			}
			if want := (FanoutResult{Written: n}); got != want {
				t.Fatalf("%s: got %+v; want %+v", what, got, want)
			}
			for _, p := range peers {
				drain(t, p, buf, f.Len())
			}
		}
		check()
		if allocs := testing.AllocsPerRun(20, check); allocs != 0 {
			t.Errorf("%s to %d: got %v allocs per call; want 0", what, n, allocs)
		}
	}
}

// TestFanoutConcurrent: parallel Broadcasts and Publishes from several
// goroutines at once (sharing the fan-out goroutines and reusing pooled
// calls) reach every connection exactly once each (-race).
func TestFanoutConcurrent(t *testing.T) {
	r := newAllocRigN(t, 2)
	const n = broadcastSerial + 100
	peers := make([]int, 0, n)
	for range n {
		c, p := r.open(t)
		r.s.Subscribe(r.s.handle(c), "all")
		peers = append(peers, p)
	}
	f := NewFrame(OpBinary, []byte("x"))
	const goroutines, calls = 4, 10
	done := make(chan FanoutResult)
	for g := range goroutines {
		go func() {
			var sum FanoutResult
			for k := range calls {
				if (g+k)%2 == 0 {
					sum.add(r.s.Broadcast(f, Reliable))
				} else {
					sum.add(r.s.Publish("all", f, Reliable))
				}
			}
			done <- sum
		}()
	}
	var total FanoutResult
	for range goroutines {
		total.add(<-done)
	}
	if want := (FanoutResult{Written: n * goroutines * calls}); total != want {
		t.Fatalf("got %+v; want %+v", total, want)
	}
	want := goroutines * calls * f.Len()
	buf := make([]byte, want+1)
	for i, p := range peers {
		drain(t, p, buf, want)
		if k, _ := syscall.Read(p, buf); k > 0 {
			t.Fatalf("peer %d got %d bytes more than %d frames", i, k, goroutines*calls)
		}
	}
	r.s.fan.stop()
	if got := r.s.Broadcast(f, Reliable); got.Written != n {
		t.Fatalf("Broadcast after the fan-out goroutines stopped: %+v; want %d written", got, n)
	}
}
