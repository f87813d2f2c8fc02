package stats

import (
	"math"
	"sort"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Median is the median of v (the mean of the middle two for an even
// count); 0 for an empty v. v is not changed.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Quantile is the nearest-rank q-quantile (0 < q ≤ 1) of v, which it
// sorts; 0 for an empty v. For the few dozen broadcasts of a run an exact
// rank is better than a histogram.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[min(max(i, 0), len(v)-1)]
}

// Round is one round's figure of a server and of the baseline.
type Round struct{ Server, Base float64 }

// Paired is the median over rounds of Server/Base, and in how many rounds
// the server did better (higher is better when higher is set). Rounds
// with a zero baseline are left out; ok is false when none is left.
func Paired(rounds []Round, higher bool) (ratio float64, wins int, ok bool) {
	var rats []float64
	for _, r := range rounds {
		if r.Base == 0 {
			continue
		}
		rats = append(rats, r.Server/r.Base)
		if (higher && r.Server > r.Base) || (!higher && r.Server < r.Base) {
			wins++
		}
	}
	if len(rats) == 0 {
		return 0, 0, false
	}
	return Median(rats), wins, true
}

// LatencyHist records latencies in µs, 1 µs to 60 s, 3 significant digits.
func LatencyHist() *hdr.Histogram { return hdr.New(1, 60_000_000, 3) }

// GapHist records push gaps in µs, up to an hour.
func GapHist() *hdr.Histogram { return hdr.New(1, 3_600_000_000, 3) }

// CloseHist records times to a close in ms, up to an hour.
func CloseHist() *hdr.Histogram { return hdr.New(1, 3_600_000, 3) }

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / 1e6 }
