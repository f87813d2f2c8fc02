package main

// compare's fan-out modes: a server in -servers may carry "@broadcast" or
// "@rooms" (wsmill@broadcast, wsmill@rooms), so that one run compares one
// peer in both modes: wsmill's Server.Broadcast against its topics
// (Server.Publish per room), side by side with the other peers' rooms.
// Without a suffix a server follows -rooms: rooms when -rooms ≥ 1, else
// broadcast. A server in rooms mode is started with -fanout-rooms; one in
// broadcast mode ignores the ?room= its clients send.

import (
	"errors"
	"fmt"
	"strings"
)

const (
	fanoutBroadcast = "broadcast" // the server broadcasts to every connection
	fanoutRooms     = "rooms"     // the server publishes to every room (-fanout-rooms)
)

// splitServerMode splits "NAME@MODE" into the name and the mode ("" when
// there is no suffix). A mode is only for the fanout workload.
func splitServerMode(n, workload string) (name, mode string, err error) {
	at := strings.LastIndexByte(n, '@') // the last: a bin: path may hold an @
	if at < 0 {
		return n, "", nil
	}
	name, mode = n[:at], n[at+1:]
	if workload != "fanout" {
		return "", "", fmt.Errorf("server %q: @%s is a fan-out mode, only for -workload fanout", n, mode)
	}
	if mode != fanoutBroadcast && mode != fanoutRooms {
		return "", "", fmt.Errorf("server %q: unknown fan-out mode %q (want @%s or @%s)", n, mode, fanoutBroadcast, fanoutRooms)
	}
	if name == "" {
		return "", "", fmt.Errorf("server %q: no server before @", n)
	}
	return name, mode, nil
}

// setFanoutModes decides, for the fanout workload, which servers publish
// to rooms: those marked @rooms (which need -rooms ≥ 1) and, with -rooms
// ≥ 1, those without a mode.
func setFanoutModes(specs []serverSpec, rooms int) error {
	for i := range specs {
		sp := &specs[i]
		switch sp.Mode {
		case fanoutRooms:
			if rooms < 1 {
				return fmt.Errorf("server %s publishes to rooms: give -rooms ≥ 1 (the clients' rooms)", sp.Label)
			}
			sp.Rooms = true
		case fanoutBroadcast:
			sp.Rooms = false
		case "":
			sp.Rooms = rooms >= 1
		default:
			return errors.New("server " + sp.Label + ": unknown fan-out mode " + sp.Mode)
		}
	}
	return nil
}
