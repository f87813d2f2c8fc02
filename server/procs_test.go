package server

import (
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
