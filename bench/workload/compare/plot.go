package compare

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/report"
)

// PlotCommand runs "wsload plot": it redraws a comparison's PNG from its
// JSON, or with -report recomputes the whole report from the runs.
func PlotCommand(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	in := fs.String("in", "", "compare-WORKLOAD.json written by compare")
	out := fs.String("out", "", "PNG to write (default: the JSON's name with .png)")
	redo := fs.Bool("report", false, "recompute medians, ratios and paired ratios from the runs and rewrite the JSON, Markdown and PNG in the JSON's directory (for files written by an older wsload)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("-in is required")
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var r report.Compare
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if len(r.Metrics) == 0 {
		r.Metrics = Metrics(r.Workload)
	}
	if *redo {
		r.Summarize()
		return r.Write(filepath.Dir(*in))
	}
	if *out == "" {
		*out = strings.TrimSuffix(*in, ".json") + ".png"
	}
	if err := report.PlotCompare(&r, *out); err != nil {
		return err
	}
	report.Result(cli.Stdout, map[string]any{"plot": *out})
	return nil
}
