package server

import (
	"context"
	"runtime"
	"testing"
)

func TestSetProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })

	t.Setenv("GOMAXPROCS", "")
	if got, want := SetProcs(3), prev+3; got != want || runtime.GOMAXPROCS(0) != want {
		t.Fatalf("SetProcs(3) = %d, GOMAXPROCS %d; want %d", got, runtime.GOMAXPROCS(0), want)
	}
	runtime.GOMAXPROCS(prev)
	if got, want := SetProcs(0), 2*prev; got != want {
		t.Fatalf("SetProcs(0) = %d; want %d (one per default P)", got, want)
	}
	runtime.GOMAXPROCS(prev)

	t.Setenv("GOMAXPROCS", "1")
	if got := SetProcs(3); got != prev || runtime.GOMAXPROCS(0) != prev {
		t.Fatalf("with GOMAXPROCS set: SetProcs = %d, GOMAXPROCS %d; want both %d", got, runtime.GOMAXPROCS(0), prev)
	}
}

// TestDefaultWorkersIgnoreSetProcs: the README's recipe (SetProcs(0), then
// Config{Workers: 0}) must give one worker per default P, as New does
// without SetProcs. Before the fix withDefaults read GOMAXPROCS after
// SetProcs had doubled it: 4 workers on 2 cores, and echo p99 went from
// 0.8 ms to 15-17 ms.
func TestDefaultWorkersIgnoreSetProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	t.Setenv("GOMAXPROCS", "")

	workers := func() int {
		s, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown(context.Background())
		return s.Config().Workers
	}
	want := workers()
	if want != prev {
		t.Fatalf("Workers without SetProcs: got %d; want %d (GOMAXPROCS)", want, prev)
	}
	procs := SetProcs(0)
	if got := workers(); got != want {
		t.Fatalf("Workers after SetProcs(0) (GOMAXPROCS %d): got %d; want %d, as without SetProcs", procs, got, want)
	}
	// A second call changes nothing: its base is still the default.
	if got := SetProcs(0); got != procs {
		t.Fatalf("SetProcs(0) again: got %d; want %d", got, procs)
	}
}
