package fanout

// fanout with rooms: the same measurement, but the server publishes each
// "F" frame to every room instead of broadcasting it. Connection i (over
// all client processes) upgrades at /ws?room=r(i%R), so R=1 puts every
// connection in one room and R=100 spreads them evenly. The server takes
// the send time once per tick and publishes that one payload to every
// room, so the per-broadcast records (time to the last subscriber, missing
// deliveries) are over all rooms of that tick, exactly as for a broadcast.

import (
	"fmt"
	"strconv"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// roomName is the room of connection g (global index) out of rooms.
func roomName(g, rooms int) string { return "r" + strconv.Itoa(g%rooms) }

// roomTarget is the upgrade request-target of connection g: /ws without
// rooms, /ws?room=rK with them.
func roomTarget(g, rooms int) string {
	if rooms <= 0 {
		return "/ws"
	}
	return "/ws?room=" + roomName(g, rooms)
}

// roomOpts is spec.DefaultOpts with the connection's room in the target.
func roomOpts(spec fleet.Spec, i int) wsclient.Options {
	o := spec.DefaultOpts(i)
	o.Target = roomTarget(spec.Offset+i, spec.Rooms)
	if spec.Chat != "" {
		o.Target = chatTarget(spec.Chat, spec.Offset+i)
	}
	return o
}

// checkRooms validates -rooms against -n: every room must get at least one
// connection, or a room the server publishes to would have nobody to
// measure.
func checkRooms(rooms, n int) error {
	switch {
	case rooms < 0:
		return fmt.Errorf("-rooms %d: must be ≥ 0 (0: no rooms, the server broadcasts)", rooms)
	case rooms > n:
		return fmt.Errorf("-rooms %d is more than -n %d: some rooms would have no connection", rooms, n)
	}
	return nil
}
