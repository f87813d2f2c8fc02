package main

import (
	"fmt"
	"testing"

	"github.com/wsmill/wsmill/bench/internal/fleet"
)

func TestRoomTarget(t *testing.T) {
	for _, tt := range []struct {
		g, rooms int
		want     string
	}{
		{5, 0, "/ws"},
		{5, 1, "/ws?room=r0"},
		{5, 3, "/ws?room=r2"},
		{99, 100, "/ws?room=r99"},
		{100, 100, "/ws?room=r0"},
	} {
		if got := roomTarget(tt.g, tt.rooms); got != tt.want {
			t.Errorf("roomTarget(%d, %d) = %q; want %q", tt.g, tt.rooms, got, tt.want)
		}
	}
	// The room follows the global index: worker 2's first connection.
	spec := fleet.Spec{Addr: "127.0.0.1:1", Offset: 7, Rooms: 4}
	if o := roomOpts(spec, 1); o.Target != "/ws?room=r0" || o.Addr != spec.Addr {
		t.Errorf("roomOpts: got %+v; want target /ws?room=r0", o)
	}
	for _, tt := range []struct {
		rooms, n int
		ok       bool
	}{{0, 10, true}, {1, 10, true}, {10, 10, true}, {11, 10, false}, {-1, 10, false}} {
		if err := checkRooms(tt.rooms, tt.n); (err == nil) != tt.ok {
			t.Errorf("checkRooms(%d, %d) = %v; want ok %v", tt.rooms, tt.n, err, tt.ok)
		}
	}
}

func TestFanoutModes(t *testing.T) {
	tests := []struct {
		name     string
		servers  []string
		workload string
		rooms    int
		want     string // fmt of label:peer:rooms per spec
		wantErr  bool
	}{
		{"both wsmill modes and the peers", []string{"wsmill@broadcast", "wsmill@rooms", "gorilla", "gws@rooms"}, "fanout", 1,
			"[wsmill@broadcast:wsmill:false wsmill@rooms:wsmill:true gorilla:gorilla:true gws@rooms:gws:true]", false},
		{"no rooms: everyone broadcasts", []string{"wsmill", "nbio@broadcast"}, "fanout", 0,
			"[wsmill:wsmill:false nbio@broadcast:nbio:false]", false},
		{"rooms without -rooms", []string{"wsmill@rooms"}, "fanout", 0, "", true},
		{"mode outside fanout", []string{"wsmill@rooms"}, "echo", 1, "", true},
		{"unknown mode", []string{"wsmill@topics"}, "fanout", 1, "", true},
		{"no name", []string{"@rooms"}, "fanout", 1, "", true},
		{"same mode twice", []string{"gws@rooms", "gws@rooms"}, "fanout", 1, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := resolveServers(tt.servers, tt.workload)
			if err == nil && tt.workload == "fanout" {
				err = setFanoutModes(specs, tt.rooms)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v; want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var got []string
			for _, sp := range specs {
				got = append(got, fmt.Sprintf("%s:%s:%v", sp.Label, sp.Peer, sp.Rooms))
			}
			if fmt.Sprint(got) != tt.want {
				t.Fatalf("got %v; want %s", got, tt.want)
			}
		})
	}
}
