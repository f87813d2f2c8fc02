package compare

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestScanWorkload(t *testing.T) {
	if w := scanWorkload([]string{"-rounds", "2", "-workload", "push"}); w != "push" {
		t.Fatalf("got %q", w)
	}
	if w := scanWorkload([]string{"--workload=echo"}); w != "echo" {
		t.Fatalf("got %q", w)
	}
}

func TestResolveServers(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wsmill-after")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		servers []string
		needs   Needs
		want    []serverSpec
		wantErr bool
	}{
		{"root wsmill", []string{"wsmill", "gws"}, Needs{},
			[]serverSpec{{Label: "wsmill", WsmillFlags: true}, {Label: "gws", Peer: "gws"}}, false},
		{"fanout uses the peer", []string{"wsmill", "rawecho"}, Needs{Broadcast: true},
			[]serverSpec{{Label: "wsmill", Peer: "wsmill"}, {Label: "rawecho", Peer: "rawecho", Skip: "rawecho cannot broadcast (it echoes bytes, it has no WebSocket framing nor a connection list)"}}, false},
		{"rawecho in push", []string{"rawecho"}, Needs{Pushes: true},
			[]serverSpec{{Label: "rawecho", Peer: "rawecho", Skip: "rawecho does not push"}}, false},
		{"prebuilt", []string{"bin:" + bin}, Needs{},
			[]serverSpec{{Label: "wsmill-after", Bin: bin, WsmillFlags: true}}, false},
		{"missing binary", []string{"bin:" + bin + "-nope"}, Needs{}, nil, true},
		{"twice", []string{"bin:" + bin, "bin:" + bin}, Needs{}, nil, true},
		{"empty", nil, Needs{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveServers(tt.servers, tt.needs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v; want error %v", err, tt.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %+v; want %+v", got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		want    string
		servers []string
		got     string
	}{
		{"", []string{"gws", "wsmill"}, "wsmill"},
		{"", []string{"wsmill-before", "wsmill-after"}, "wsmill-before"},
		{"gws", []string{"gws", "wsmill"}, "gws"},
	} {
		if b, err := pickBaseline(tt.want, tt.servers); err != nil || b != tt.got {
			t.Fatalf("pickBaseline(%q, %v): got %q, %v; want %q", tt.want, tt.servers, b, err, tt.got)
		}
	}
	if _, err := pickBaseline("nbio", []string{"gws"}); err == nil {
		t.Fatal("a baseline that is not compared is accepted")
	}
}
