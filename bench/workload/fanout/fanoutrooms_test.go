package fanout

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/target"
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

// TestFanoutModeFlags: compare's @rooms needs -rooms and adds
// -fanout-rooms; no mode follows -rooms; @broadcast adds nothing.
func TestFanoutModeFlags(t *testing.T) {
	tests := []struct {
		mode    string
		rooms   int
		want    string
		wantErr bool
	}{
		{"rooms", 1, "[-fanout-rooms]", false},
		{"rooms", 0, "", true},
		{"broadcast", 1, "[]", false},
		{"", 1, "[-fanout-rooms]", false},
		{"", 0, "[]", false},
		{"topics", 1, "", true},
	}
	for _, tt := range tests {
		w := &compared{}
		w.cfg.Rooms = tt.rooms
		got, err := w.ModeFlags("s", tt.mode)
		if (err != nil) != tt.wantErr || err == nil && fmt.Sprint(got) != tt.want {
			t.Errorf("ModeFlags(%q) with -rooms %d: got %v, %v; want %s (error %v)", tt.mode, tt.rooms, got, err, tt.want, tt.wantErr)
		}
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
	_, benchDir, err := target.FindRoot("")
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
			bin, err := target.Build(context.Background(), target.Spec{Label: tt.peer, Peer: tt.peer}, "", benchDir, dir)
			if err != nil {
				t.Fatal(err)
			}
			extra := []string{"-fanout-interval", interval.String()}
			if tt.rooms {
				extra = append(extra, "-fanout-rooms")
			}
			srv, err := target.Start(context.Background(), tt.peer, bin, time.Hour, extra, filepath.Join(dir, "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			res, err := Run(context.Background(), Config{Target: cli.Target{Addr: srv.Addr, PID: srv.Cmd.Process.Pid}, N: 40, Rooms: 4,
				Interval: interval, Duration: 500 * time.Millisecond, Grace: 300 * time.Millisecond, Dialing: fleet.Dialing{Procs: 1, DialConc: 8,
					DialTimeout: 5 * time.Second}, Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.Connected != 40 || res.Open != 40 || res.Broadcasts < 8 || res.Missing != 0 || res.Dups != 0 ||
				res.Deliveries != int64(40*res.Broadcasts) {
				t.Fatalf("%+v", res)
			}
			c, err := wsclient.Dial(context.Background(), wsclient.Options{Addr: srv.Addr, Timeout: 2 * time.Second})
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
