package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
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

// TestFanoutRoomsPeers builds every fan-out peer and runs wsload fanout
// with rooms against it for real: every connection (40 over 4 rooms) gets
// every tick's frame once, and a peer started with -fanout-rooms refuses an
// upgrade without a room, so the mode is really on. wsmill in broadcast
// mode, the other half of a wsmill@broadcast,wsmill@rooms run, must still
// reach clients that name a room.
func TestFanoutRoomsPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the peers")
	}
	_, benchDir, err := findRoot("")
	if err != nil {
		t.Fatal(err)
	}
	const interval = 50 * time.Millisecond
	for _, tt := range []struct {
		peer  string
		rooms bool
	}{{"wsmill", true}, {"wsmill", false}, {"gorilla", true}, {"gws", true}, {"nbio", true}} {
		t.Run(fmt.Sprintf("%s/rooms=%v", tt.peer, tt.rooms), func(t *testing.T) {
			dir := t.TempDir()
			bin, err := buildServer(context.Background(), serverSpec{Label: tt.peer, Peer: tt.peer}, "", benchDir, dir)
			if err != nil {
				t.Fatal(err)
			}
			extra := []string{"-fanout-interval", interval.String()}
			if tt.rooms {
				extra = append(extra, "-fanout-rooms")
			}
			srv, err := startServer(context.Background(), tt.peer, bin, time.Hour, extra, filepath.Join(dir, "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.stop()
			res, err := runFanout(context.Background(), fanoutConfig{Addr: srv.addr, PID: srv.cmd.Process.Pid, N: 40, Rooms: 4,
				Interval: interval, Duration: 500 * time.Millisecond, Grace: 300 * time.Millisecond, Procs: 1, DialConc: 8,
				DialTimeout: 5 * time.Second, Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.Connected != 40 || res.Open != 40 || res.Broadcasts < 8 || res.Missing != 0 || res.Dups != 0 ||
				res.Deliveries != int64(40*res.Broadcasts) {
				t.Fatalf("%+v", res)
			}
			c, err := wsclient.Dial(context.Background(), wsclient.Options{Addr: srv.addr, Timeout: 2 * time.Second})
			if tt.rooms {
				if err == nil || !strings.Contains(err.Error(), "upgrade refused") {
					t.Fatalf("upgrade without a room: err %v; want it refused", err)
				}
			} else if err != nil {
				t.Fatalf("broadcast mode, plain /ws: %v", err)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}
