package stats

import (
	"math"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{7}, 7},
		{"odd, unsorted", []float64{3, 1, 2}, 2},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"an outlier does not move it", []float64{10, 11, 12, 1e9, 9}, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			if got := Median(in); got != tt.want {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("Median reordered its input: %v", in)
				}
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, reversed
	}
	tests := []struct {
		name string
		in   []float64
		q    float64
		want float64
	}{
		{"empty", nil, 0.5, 0},
		{"p50 of 1..100 is the 50th", hundred, 0.5, 50},
		{"p99 of 1..100 is the 99th", hundred, 0.99, 99},
		{"max", hundred, 1, 100},
		{"tiny q is the minimum", hundred, 1e-9, 1},
		{"p99 of 3 is the largest", []float64{5, 1, 3}, 0.99, 5},
		{"p50 of 2 is the lower (nearest rank)", []float64{2, 1}, 0.5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quantile(append([]float64(nil), tt.in...), tt.q); got != tt.want {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestPaired: a round where the whole machine was slow moves both figures
// of that round; the paired ratio follows the per-round ratios.
func TestPaired(t *testing.T) {
	tests := []struct {
		name      string
		rounds    []Round
		higher    bool
		wantRatio float64
		wantWins  int
		wantOK    bool
	}{
		{"slow round for both", []Round{{90, 100}, {45, 50}, {110, 102}}, true, 0.9, 1, true},
		{"lower is better", []Round{{12, 10}, {9, 10}, {11, 10}}, false, 1.1, 1, true},
		{"even count: mean of the middle ratios", []Round{{1, 1}, {3, 1}}, true, 2, 1, true},
		{"ties are no win", []Round{{5, 5}}, true, 1, 0, true},
		{"zero baseline left out", []Round{{5, 0}, {4, 2}}, true, 2, 1, true},
		{"nothing to pair", []Round{{5, 0}}, true, 0, 0, false},
		{"no rounds", nil, true, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, ok := Paired(tt.rounds, tt.higher)
			if ok != tt.wantOK || w != tt.wantWins || math.Abs(r-tt.wantRatio) > 1e-12 {
				t.Fatalf("got %v, %d wins, ok %v; want %v, %d, %v", r, w, ok, tt.wantRatio, tt.wantWins, tt.wantOK)
			}
		})
	}
}

func TestHistRanges(t *testing.T) {
	h := LatencyHist()
	if err := h.RecordValue(60_000_000); err != nil {
		t.Fatalf("latency hist refuses 60 s: %v", err)
	}
	if err := GapHist().RecordValue(3_600_000_000); err != nil {
		t.Fatalf("gap hist refuses an hour: %v", err)
	}
	if err := CloseHist().RecordValue(3_600_000); err != nil {
		t.Fatalf("close hist refuses an hour: %v", err)
	}
	if got := Ms(1500 * time.Microsecond); got != 1.5 {
		t.Fatalf("Ms: got %v; want 1.5", got)
	}
}
