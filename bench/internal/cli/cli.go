package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Stdout receives the tables and the RESULT line, Stderr the progress lines
// and warnings. Tests may swap them.
var (
	Stdout io.Writer = os.Stdout
	Stderr io.Writer = os.Stderr
)

// ParseFlags parses args into fs and rejects positional arguments: every
// wsload subcommand takes flags only, so a stray word is a typo.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// Given reports whether the flag name was set on the command line (as
// opposed to holding its default).
func Given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Target is the server under test, given by -addr and -pid.
type Target struct {
	Addr string
	PID  int // 0: the server's process is not sampled
}

// Register defines -addr and -pid on fs; what says what the process id is
// sampled for ("RSS and CPU", "its CPU time").
func (t *Target) Register(fs *flag.FlagSet, what string) {
	fs.StringVar(&t.Addr, "addr", "127.0.0.1:8080", "server host:port")
	fs.IntVar(&t.PID, "pid", 0, "server process id, for "+what+" (0: not measured)")
}
