package report

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/wsmill/wsmill/bench/internal/cli"
)

// Result writes the machine-readable summary line "RESULT {json}" that
// every subcommand ends with: scripts and compare read this line only.
func Result(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(cli.Stderr, "wsload: encode result: %v\n", err)
		return
	}
	fmt.Fprintf(w, "RESULT %s\n", b)
}

// Table is an aligned table of columns separated by two spaces, the
// human-readable form of a result.
type Table struct{ tw *tabwriter.Writer }

// NewTable starts a table on w; nothing is written before Flush.
func NewTable(w io.Writer) *Table {
	return &Table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

// Row adds one row.
func (t *Table) Row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

// Flush writes the rows, aligned.
func (t *Table) Flush() { t.tw.Flush() }

// Command is the body every workload's command shares: parse args into fs
// (flags only), run, then print the result as a table and the RESULT line.
// A result that comes with an error (a run that measured something, then
// failed) is printed all the same, and the error returned.
func Command[R any](ctx context.Context, fs *flag.FlagSet, args []string, run func(context.Context) (*R, error), table func(io.Writer, *R)) (*R, error) {
	if err := cli.ParseFlags(fs, args); err != nil {
		return nil, err
	}
	res, err := run(ctx)
	if res != nil {
		table(cli.Stdout, res)
		Result(cli.Stdout, res)
	}
	return res, err
}
