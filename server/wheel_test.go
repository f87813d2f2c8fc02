package server

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestSlotStride: consecutive opens on one worker fill every slot once per
// n opens (balanced, as round robin would) and land far apart, so a few
// connections are spread over the whole interval: the first 8 at least
// n/128 slots from each other.
func TestSlotStride(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 8, 88, 100, 308, 500, 1000, 6000, 65536} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			interval := time.Duration(n) * wheelTick
			s, err := New(testConfig(Config{PushInterval: interval, Workers: 1}))
			if err != nil {
				t.Fatal(err)
			}
			s.closeWorkers()
			if s.wheel.n != n {
				t.Fatalf("PushInterval %v: %d slots; want %d", interval, s.wheel.n, n)
			}
			var first []int
			for i := range n {
				c := &conn{fd: 1<<20 + i, slot: -1, phase: phaseOpen}
				s.wheel.add(c)
				if i < 8 {
					first = append(first, int(c.slot))
				}
			}
			for i := range s.workers[0].slots {
				if got := len(s.workers[0].slots[i].conns); got != 1 {
					t.Fatalf("after %d opens slot %d holds %d; want 1 each", n, i, got)
				}
			}
			if n < 8 {
				return
			}
			slices.Sort(first)
			for i, a := range first {
				b := first[(i+1)%len(first)]
				if gap := (b - a + n) % n; gap < n/128 {
					t.Errorf("first 8 opens in slots %v: %d and %d are %d apart; want at least n/128 = %d", first, a, b, gap, n/128)
				}
			}
		})
	}
}
