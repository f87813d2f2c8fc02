package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"flags only", []string{"-n", "3"}, ""},
		{"stray word", []string{"-n", "3", "extra"}, "unexpected arguments: extra"},
		{"unknown flag", []string{"-m", "3"}, "flag provided but not defined: -m"},
		{"bad value", []string{"-n", "x"}, "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.Int("n", 1, "")
			err := ParseFlags(fs, tt.args)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v; want %q", err, tt.wantErr)
			}
		})
	}
}

func TestGiven(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var tg Target
	tg.Register(fs, "CPU")
	if err := ParseFlags(fs, []string{"-pid", "0"}); err != nil {
		t.Fatal(err)
	}
	if !Given(fs, "pid") || Given(fs, "addr") {
		t.Fatalf("Given(pid) %v, Given(addr) %v; want true, false", Given(fs, "pid"), Given(fs, "addr"))
	}
	if tg.Addr != "127.0.0.1:8080" {
		t.Fatalf("default addr %q", tg.Addr)
	}
}
