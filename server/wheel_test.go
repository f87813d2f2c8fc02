package server

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestWheelSleepsWhenIdle: a server with nothing to do does nothing. The
// wheel wakes only for a tick that has a connection in a slot of some
// worker, or for a deadline: with no connections, or with a few idle ones
// at a long PushInterval, it wakes about as often as their slots come
// round (none of them, most likely, in the window), plus the handshake
// deadline it may have planned. Before the wheel planned its sleep it
// woke 100 times a second whatever there was to do.
func TestWheelSleepsWhenIdle(t *testing.T) {
	for _, tt := range []struct {
		name     string
		interval time.Duration
		conns    int
	}{
		{"no connections at 5s", 5 * time.Second, 0},
		{"no connections at 1h", time.Hour, 0},
		{"20 idle connections at 1h", time.Hour, 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const hs = 200 * time.Millisecond
			s, addr := startServer(t, Config{
				PushInterval:     tt.interval,
				IdleTimeout:      -1,
				HandshakeTimeout: hs,
				Workers:          2,
			})
			for range tt.conns {
				rawHandshake(t, addr)
			}
			time.Sleep(hs + 50*time.Millisecond) // past the handshake deadlines
			const window = time.Second
			from, before := s.now(), s.wheel.wakeups.Load()
			time.Sleep(window)
			got, to := s.wheel.wakeups.Load()-before, s.now()
			busy := busyTicks(s, from, to)
			t.Logf("%d wheel wake-ups in %v; %d ticks in it had a connection to visit", got, window, busy)
			if got > busy+1 {
				t.Errorf("wheel woke %d times in %v with %d idle connections, %d ticks with work; want at most %d",
					got, window, tt.conns, busy, busy+1)
			}
		})
	}
}

// busyTicks counts the wheel's ticks between from and to at which some
// worker has a connection in the tick's slot: the wake-ups that pushes and
// idle checks justify.
func busyTicks(s *Server, from, to time.Duration) int64 {
	wh := s.wheel
	var busy int64
	for t := int64(from / wh.tick); t <= int64(to/wh.tick); t++ {
		for _, w := range s.workers {
			if w.slots[t%int64(wh.n)].busyAt(t) {
				busy++
				break
			}
		}
	}
	return busy
}

// TestWheelWakesForNewConn: a connection opened while the wheel sleeps
// with nothing planned (an empty server) gets its pushes once per
// PushInterval from its first one, is not taken for silent while it
// talks, and once silent is pinged within IdleTimeout plus one
// PushInterval. Its reads are stamped with the worker's own clock: a clock
// set only when the wheel wakes would make a talking client look silent
// for as long as the wheel slept.
func TestWheelWakesForNewConn(t *testing.T) {
	const (
		interval = 400 * time.Millisecond
		idle     = 300 * time.Millisecond
		slack    = 150 * time.Millisecond
	)
	s, addr := startServer(t, Config{PushInterval: interval, IdleTimeout: idle, Workers: 2})
	time.Sleep(3 * interval / 2) // nothing to do: the wheel sleeps
	asleep := s.wheel.wakeups.Load()
	opened := time.Now()
	rc := rawHandshake(t, addr)
	type frameAt struct {
		f   rawIn
		at  time.Time
		err error
	}
	frames := make(chan frameAt, 64)
	go func() {
		for {
			f, err := rc.rawRead(5 * time.Second)
			frames <- frameAt{f, time.Now(), err}
			if err != nil {
				return
			}
		}
	}()

	// Talking for three intervals: pushes and echoes, never a ping.
	var pushes []time.Time
	lastSent := time.Now()
	rc.write(rawFrame(rawOpText, true, []byte("hi"), true))
	talk := time.NewTicker(50 * time.Millisecond)
	defer talk.Stop()
	for time.Since(opened) < 3*interval {
		select {
		case <-talk.C:
			rc.write(rawFrame(rawOpText, true, []byte("hi"), true))
			lastSent = time.Now()
		case fa := <-frames:
			switch {
			case fa.err != nil:
				t.Fatalf("talking client: %v", fa.err)
			case rawIsTimePush(fa.f):
				pushes = append(pushes, fa.at)
			case fa.f.op == rawOpText && string(fa.f.payload) == "hi":
			default:
				t.Fatalf("talking client: got %v; want pushes and echoes only (a ping: taken for silent)", fa.f)
			}
		}
	}
	talk.Stop()
	if s.wheel.wakeups.Load() == asleep {
		t.Fatal("the wheel never woke for the new connection")
	}
	if len(pushes) < 2 {
		t.Fatalf("%d pushes in %v; want at least 2 at PushInterval %v", len(pushes), 3*interval, interval)
	}
	if d := pushes[0].Sub(opened); d > interval+slack {
		t.Errorf("first push %v after the open; want within PushInterval %v", d, interval)
	}
	for i := 1; i < len(pushes); i++ {
		if d := pushes[i].Sub(pushes[i-1]); d < interval-slack || d > interval+slack {
			t.Errorf("push %d came %v after the one before; want about %v", i, d, interval)
		}
	}

	// Silent from now: a ping within IdleTimeout + PushInterval.
	timeout := time.After(idle + interval + slack)
	for {
		select {
		case fa := <-frames:
			if fa.err != nil {
				t.Fatalf("silent client: %v", fa.err)
			}
			if fa.f.op != rawOpPing {
				continue // an echo still on its way, a push
			}
			d := fa.at.Sub(lastSent)
			t.Logf("pushes %v after the open; ping %v after the last byte", since(opened, pushes), d.Round(time.Millisecond))
			if d < idle-10*time.Millisecond || d > idle+interval+slack {
				t.Errorf("ping %v after the last byte; want between %v and %v", d, idle, idle+interval)
			}
			return
		case <-timeout:
			t.Fatalf("silent client: no ping %v after its last byte; want one within %v", time.Since(lastSent), idle+interval)
		}
	}
}

func since(t0 time.Time, ts []time.Time) []time.Duration {
	var out []time.Duration
	for _, t := range ts {
		out = append(out, t.Sub(t0).Round(time.Millisecond))
	}
	return out
}

// TestWheelWakesForDeadline: a handshake deadline set while the wheel
// sleeps, with nothing planned (an empty server) or planned far ahead (an
// idle connection whose slot comes round in about an hour), still fires
// on time: the first deadline on an empty list wakes the wheel to plan
// again.
func TestWheelWakesForDeadline(t *testing.T) {
	for _, tt := range []struct {
		name  string
		conns int
	}{
		{"empty server", 0},
		{"wheel planned an hour ahead", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			s, addr := startServer(t, Config{PushInterval: time.Hour, IdleTimeout: -1, HandshakeTimeout: timeout, Workers: 2})
			for range tt.conns {
				rawHandshake(t, addr)
			}
			time.Sleep(timeout + 100*time.Millisecond) // past every deadline planned so far
			start := time.Now()
			rc := rawDial(t, addr)
			rc.write([]byte("GET /ws HTTP/1.1\r\n")) // and nothing more
			if n, err := rc.drainToEOF(2 * time.Second); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("after %d bytes: got %v; want the server to close within 2s", n, err)
			}
			d := time.Since(start)
			t.Logf("closed %v after the dial", d.Round(time.Millisecond))
			if d < timeout-20*time.Millisecond || d > timeout+100*time.Millisecond {
				t.Errorf("handshake timed out %v after the dial; want about %v", d, timeout)
			}
			if got := s.Stats().Live; got != int64(tt.conns) {
				t.Errorf("Live = %d; want %d", got, tt.conns)
			}
		})
	}
}

// TestSlotStride: consecutive opens on one worker fill every slot once per
// n opens (balanced, as round robin would) and land far apart, so a few
// connections are spread over the whole interval: the first 8 at least
// n/128 slots from each other.
func TestSlotStride(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 8, 88, 100, 308, 500, 1000, 6000, 65536} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			interval := time.Duration(n) * wheelTick
			s, err := New(testConfig(Config{PushInterval: interval, Workers: 1}))
			if err != nil {
				t.Fatal(err)
			}
			s.closeWorkers()
			if s.wheel.n != n {
				t.Fatalf("PushInterval %v: %d slots; want %d", interval, s.wheel.n, n)
			}
			var first []int
			for i := range n {
				c := &conn{fd: 1<<20 + i, slot: -1, phase: phaseOpen}
				s.wheel.add(c)
				if i < 8 {
					first = append(first, int(c.slot))
				}
			}
			for i := range s.workers[0].slots {
				if got := len(s.workers[0].slots[i].conns); got != 1 {
					t.Fatalf("after %d opens slot %d holds %d; want 1 each", n, i, got)
				}
			}
			if n < 8 {
				return
			}
			slices.Sort(first)
			for i, a := range first {
				b := first[(i+1)%len(first)]
				if gap := (b - a + n) % n; gap < n/128 {
					t.Errorf("first 8 opens in slots %v: %d and %d are %d apart; want at least n/128 = %d", first, a, b, gap, n/128)
				}
			}
		})
	}
}
