package report

// Plotting a comparison: a grouped bar chart of the workload's main metric,
// one group per server and one bar per round, with the median marked.

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotCompare draws r's main metric to a PNG at path.
func PlotCompare(r *Compare, path string) error {
	if len(r.Metrics) == 0 {
		return errors.New("no metrics")
	}
	m := r.Metrics[0]
	// Servers that have at least one value (rawecho is skipped for push and fanout).
	var servers []string
	for _, s := range r.Servers {
		if _, ok := r.Medians[s][m.Key]; ok {
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		return errors.New("no successful run to plot")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("wsload %s: %s (%s is better), per round", r.Workload, m.Label, m.Better)
	p.Y.Label.Text = m.Label
	p.Y.Min = 0

	width := vg.Points(60 / float64(max(r.Rounds, 1)))
	if width > 20 {
		width = 20
	}
	for round := 1; round <= r.Rounds; round++ {
		vals := make(plotter.Values, len(servers))
		for i, s := range servers {
			for _, run := range r.Runs {
				if run.Server == s && run.Round == round && run.Error == "" && run.Result != nil {
					if v, ok := Lookup(run.Result, m.Key); ok {
						vals[i] = v
					}
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = vg.Length(0)
		bars.Color = plotutil.Color(round - 1)
		bars.Offset = width * vg.Length(float64(round-1)-float64(r.Rounds-1)/2)
		p.Add(bars)
		p.Legend.Add(fmt.Sprintf("round %d", round), bars)
	}
	// The medians, as a black bar outline.
	meds := make(plotter.XYs, len(servers))
	for i, s := range servers {
		meds[i] = plotter.XY{X: float64(i), Y: r.Medians[s][m.Key]}
	}
	sc, err := plotter.NewScatter(meds)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Shape = draw.BoxGlyph{}
	sc.GlyphStyle.Color = color.Black
	sc.GlyphStyle.Radius = vg.Points(3)
	p.Add(sc)
	p.Legend.Add("median", sc)
	p.Legend.Top = true
	p.Legend.Left = true
	// Headroom above the tallest bar for the legend.
	top := 0.0
	for _, run := range r.Runs {
		if v, ok := Lookup(run.Result, m.Key); ok && run.Error == "" {
			top = math.Max(top, v)
		}
	}
	p.Y.Max = top * 1.35
	p.Y.Tick.Marker = PlainTicks{}
	labels := make([]string, len(servers))
	for i, s := range servers {
		labels[i] = s
		if rat, ok := r.Ratios[s][m.Key]; ok && s != r.BaselineName() {
			labels[i] = fmt.Sprintf("%s (%.2f×)", s, rat)
		}
	}
	p.NominalX(labels...)
	p.Add(plotter.NewGrid())
	w := vg.Points(float64(120 + 110*len(servers)))
	if w < 6*vg.Inch {
		w = 6 * vg.Inch
	}
	return p.Save(w, 4*vg.Inch, path)
}

// PlainTicks labels ticks as plain numbers (50000, 0.5), not "50000.00".
type PlainTicks struct{}

func (PlainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}
