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
		{"prebuilt peer for fanout", []string{"bin:" + bin}, Needs{Broadcast: true},
			[]serverSpec{{Label: "wsmill-after", Bin: bin}}, false},
		{"missing binary", []string{"bin:" + bin + "-nope"}, Needs{}, nil, true},
		{"twice", []string{"bin:" + bin, "bin:" + bin}, Needs{}, nil, true},
		{"empty", nil, Needs{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveServers(tt.servers, tt.needs, nil)
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

func TestResolveServersWithArgs(t *testing.T) {
	got, err := resolveServers([]string{"wsmill+deflate", "wsmill", "gws+deflate", "wsmill+deflate+deflate-min=512"}, Needs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []serverSpec{
		{Label: "wsmill+deflate", WsmillFlags: true, Args: []string{"-deflate"}},
		{Label: "wsmill", WsmillFlags: true},
		{Label: "gws+deflate", Peer: "gws", Args: []string{"-deflate"}},
		{Label: "wsmill+deflate+deflate-min=512", WsmillFlags: true, Args: []string{"-deflate", "-deflate-min=512"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v; want %+v", got, want)
	}
	for _, bad := range [][]string{{"wsmill+"}, {"gws+-deflate"}, {"gws+=1"}, {"gws+deflate", "gws+deflate"}} {
		if _, err := resolveServers(bad, Needs{}, nil); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	// +FLAG and a fan-out @MODE together: the mode is the last part.
	got, err = resolveServers([]string{"wsmill+deflate@rooms", "gws+deflate@broadcast"}, Needs{Broadcast: true}, fanoutModes)
	if err != nil {
		t.Fatal(err)
	}
	want = []serverSpec{
		{Label: "wsmill+deflate@rooms", Peer: "wsmill", Args: []string{"-deflate"}, Mode: "rooms"},
		{Label: "gws+deflate@broadcast", Peer: "gws", Args: []string{"-deflate"}, Mode: "broadcast"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v; want %+v", got, want)
	}
	if _, err := resolveServers([]string{"gws@rooms+deflate"}, Needs{Broadcast: true}, fanoutModes); err == nil {
		t.Error("gws@rooms+deflate: no error (the mode comes last)")
	}
	got, err = resolveServers([]string{"rawecho+x"}, Needs{Pushes: true}, nil)
	if err != nil || len(got) != 1 || got[0].Skip == "" {
		t.Fatalf("rawecho+x in push: %+v, %v; want skipped", got, err)
	}
}

var fanoutModes = []string{"broadcast", "rooms"}

// modal is a workload with fanout's modes: @rooms adds -fanout-rooms and
// needs rooms, no mode follows rooms.
type modal struct{ rooms int }

func (m modal) Modes() []string { return fanoutModes }
func (m modal) ModeFlags(label, mode string) ([]string, error) {
	if mode == "rooms" && m.rooms < 1 {
		return nil, fmt.Errorf("server %s publishes to rooms: give -rooms ≥ 1", label)
	}
	if mode == "rooms" || mode == "" && m.rooms >= 1 {
		return []string{"-fanout-rooms"}, nil
	}
	return nil, nil
}

// TestServerModes: NAME@MODE entries resolve to the workload's modes and
// their flags; a mode where the workload has none, an unknown one, a
// missing name and a duplicate are errors.
func TestServerModes(t *testing.T) {
	tests := []struct {
		name    string
		servers []string
		modes   []string
		rooms   int
		want    string // label:peer:modeargs per spec
		wantErr bool
	}{
		{"both wsmill modes and the peers", []string{"wsmill@broadcast", "wsmill@rooms", "gorilla", "gws@rooms"}, fanoutModes, 1,
			"[wsmill@broadcast:wsmill:[] wsmill@rooms:wsmill:[-fanout-rooms] gorilla:gorilla:[-fanout-rooms] gws@rooms:gws:[-fanout-rooms]]", false},
		{"no rooms: everyone broadcasts", []string{"wsmill", "nbio@broadcast"}, fanoutModes, 0,
			"[wsmill:wsmill:[] nbio@broadcast:nbio:[]]", false},
		{"rooms without -rooms", []string{"wsmill@rooms"}, fanoutModes, 0, "", true},
		{"mode in a workload without modes", []string{"wsmill@rooms"}, nil, 1, "", true},
		{"unknown mode", []string{"wsmill@topics"}, fanoutModes, 1, "", true},
		{"no name", []string{"@rooms"}, fanoutModes, 1, "", true},
		{"same mode twice", []string{"gws@rooms", "gws@rooms"}, fanoutModes, 1, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := resolveServers(tt.servers, Needs{Broadcast: true}, tt.modes)
			if err == nil {
				err = setModes(specs, modal{tt.rooms})
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v; want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var got []string
			for _, sp := range specs {
				got = append(got, fmt.Sprintf("%s:%s:%v", sp.Label, sp.Peer, sp.ModeArgs))
			}
			if fmt.Sprint(got) != tt.want {
				t.Fatalf("got %v; want %s", got, tt.want)
			}
		})
	}
}
