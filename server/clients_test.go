package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
)

// Tests against real third-party WebSocket clients: gorilla/websocket and
// coder/websocket. Every test is table-driven over libClients.

// libTimePush matches the payload of a time push.
var libTimePush = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

type libMsgType int

const (
	libText libMsgType = iota + 1
	libBinary
)

func (m libMsgType) String() string {
	switch m {
	case libText:
		return "text"
	case libBinary:
		return "binary"
	}
	return fmt.Sprintf("libMsgType(%d)", int(m))
}

// libConn is the part of a client library the tests use.
type libConn interface {
	read(ctx context.Context) (libMsgType, []byte, error)
	write(ctx context.Context, typ libMsgType, p []byte) error
	// closeNormal sends Close 1000 and returns nil iff the server answered
	// with Close 1000.
	closeNormal(ctx context.Context) error
	// abort drops the connection without a handshake (cleanup).
	abort()
}

type libClient struct {
	name string
	dial func(ctx context.Context, url string) (libConn, error)
}

var libClients = []libClient{
	{"gorilla", libDialGorilla},
	{"coder", libDialCoder},
}

// --- gorilla/websocket ---

type libGorilla struct{ c *gorilla.Conn }

func libDialGorilla(ctx context.Context, url string) (libConn, error) {
	d := gorilla.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return &libGorilla{c: c}, nil
}

func ctxDeadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(10 * time.Second)
}

func (g *libGorilla) read(ctx context.Context) (libMsgType, []byte, error) {
	g.c.SetReadDeadline(ctxDeadline(ctx))
	typ, p, err := g.c.ReadMessage()
	if err != nil {
		return 0, nil, err
	}
	switch typ {
	case gorilla.TextMessage:
		return libText, p, nil
	case gorilla.BinaryMessage:
		return libBinary, p, nil
	}
	return 0, nil, fmt.Errorf("gorilla: unexpected message type %d", typ)
}

func (g *libGorilla) write(ctx context.Context, typ libMsgType, p []byte) error {
	g.c.SetWriteDeadline(ctxDeadline(ctx))
	t := gorilla.TextMessage
	if typ == libBinary {
		t = gorilla.BinaryMessage
	}
	return g.c.WriteMessage(t, p)
}

func (g *libGorilla) closeNormal(ctx context.Context) error {
	msg := gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, "")
	if err := g.c.WriteControl(gorilla.CloseMessage, msg, ctxDeadline(ctx)); err != nil {
		return fmt.Errorf("write close: %w", err)
	}
	for {
		g.c.SetReadDeadline(ctxDeadline(ctx))
		typ, p, err := g.c.ReadMessage()
		if err != nil {
			var ce *gorilla.CloseError
			if errors.As(err, &ce) {
				if ce.Code == gorilla.CloseNormalClosure {
					g.c.Close()
					return nil
				}
				return fmt.Errorf("server answered close code %d (%q); want 1000", ce.Code, ce.Text)
			}
			return fmt.Errorf("waiting for the close answer: %w", err)
		}
		if typ == gorilla.TextMessage && libTimePush.Match(p) {
			continue // a time push that crossed our Close
		}
		return fmt.Errorf("unexpected %d message %q while closing", typ, libShort(p))
	}
}

func (g *libGorilla) abort() { g.c.Close() }

// --- coder/websocket ---

type libCoder struct{ c *coder.Conn }

func libDialCoder(ctx context.Context, url string) (libConn, error) {
	c, resp, err := coder.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	c.SetReadLimit(2 << 20) // default is 32 KiB; echoes go up to 1 MiB
	return &libCoder{c: c}, nil
}

func (k *libCoder) read(ctx context.Context) (libMsgType, []byte, error) {
	typ, p, err := k.c.Read(ctx)
	if err != nil {
		return 0, nil, err
	}
	switch typ {
	case coder.MessageText:
		return libText, p, nil
	case coder.MessageBinary:
		return libBinary, p, nil
	}
	return 0, nil, fmt.Errorf("coder: unexpected message type %v", typ)
}

func (k *libCoder) write(ctx context.Context, typ libMsgType, p []byte) error {
	t := coder.MessageText
	if typ == libBinary {
		t = coder.MessageBinary
	}
	return k.c.Write(ctx, t, p)
}

func (k *libCoder) closeNormal(ctx context.Context) error {
	// Close returns nil only if the peer answered with the same code (it
	// discards data frames, i.e. time pushes, while waiting). It has its own
	// 5 s timeouts.
	return k.c.Close(coder.StatusNormalClosure, "")
}

func (k *libCoder) abort() { k.c.CloseNow() }

// --- helpers ---

func libShort(p []byte) string {
	if len(p) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", p[:40], len(p))
	}
	return string(p)
}

// libDial connects cl to the server at addr and checks that the first
// message is the greeting.
func libDial(t *testing.T, cl libClient, addr string) libConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := cl.dial(ctx, "ws://"+addr+"/ws")
	if err != nil {
		t.Fatalf("%s: dial: %v", cl.name, err)
	}
	t.Cleanup(c.abort)
	typ, p, err := c.read(ctx)
	if err != nil {
		t.Fatalf("%s: reading greeting: %v", cl.name, err)
	}
	if typ != libText || string(p) != "Hi Client!" {
		t.Fatalf("%s: first message is %v %q; want text %q", cl.name, typ, libShort(p), "Hi Client!")
	}
	return c
}

// libReadSkipPushes reads the next message that is not a time push.
func libReadSkipPushes(ctx context.Context, c libConn) (libMsgType, []byte, error) {
	for {
		typ, p, err := c.read(ctx)
		if err != nil {
			return 0, nil, err
		}
		if typ == libText && libTimePush.Match(p) {
			continue
		}
		return typ, p, nil
	}
}

// libTextPayload returns exactly n bytes of valid UTF-8 mixing 1-, 2-, 3- and
// 4-byte sequences (padded with ASCII).
func libTextPayload(n int) []byte {
	const pattern = "aé€𝄞 ~Zß漢🙂" // 1+2+3+4+1+1+1+2+3+4 bytes
	b := make([]byte, 0, n)
	for len(b)+len(pattern) <= n {
		b = append(b, pattern...)
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

func libBinaryPayload(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// --- tests ---

func TestClientLibGreeting(t *testing.T) {
	for _, cl := range libClients {
		t.Run(cl.name, func(t *testing.T) {
			_, addr := startServer(t, Config{PushInterval: 200 * time.Millisecond})
			libDial(t, cl, addr)
		})
	}
}

func TestClientLibEcho(t *testing.T) {
	sizes := []int{0, 125, 126, 65535, 65536, 1 << 20}
	for _, cl := range libClients {
		t.Run(cl.name, func(t *testing.T) {
			s, addr := startServer(t, Config{PushInterval: 200 * time.Millisecond})
			if got := s.Config().MaxMessage; got != 1<<20 {
				t.Fatalf("default MaxMessage = %d; want 1 MiB", got)
			}
			c := libDial(t, cl, addr)
			for _, typ := range []libMsgType{libText, libBinary} {
				for _, n := range sizes {
					var p []byte
					if typ == libText {
						p = libTextPayload(n)
					} else {
						p = libBinaryPayload(t, n)
					}
					if len(p) != n {
						t.Fatalf("payload has %d bytes; want %d", len(p), n)
					}
					if typ == libText && libTimePush.Match(p) {
						t.Fatalf("echo payload %q looks like a time push", p)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if err := c.write(ctx, typ, p); err != nil {
						cancel()
						t.Fatalf("write %v %d bytes: %v", typ, n, err)
					}
					gt, got, err := libReadSkipPushes(ctx, c)
					cancel()
					if err != nil {
						t.Fatalf("reading echo of %v %d bytes: %v", typ, n, err)
					}
					if gt != typ {
						t.Fatalf("echo of %v %d bytes came back as %v", typ, n, gt)
					}
					if !bytes.Equal(got, p) {
						t.Fatalf("echo of %v %d bytes differs: got %d bytes %q", typ, n, len(got), libShort(got))
					}
				}
			}
		})
	}
}

func TestClientLibTimePush(t *testing.T) {
	const (
		interval  = 200 * time.Millisecond
		tolerance = 60 * time.Millisecond
		pushes    = 8 // 7 gaps
	)
	// The gaps are measured where the client reads, so one scheduling
	// delay of the test process (go test runs packages side by side,
	// under -race) makes one gap long and the next short. The cadence is
	// the median gap; a missed push (a gap of two intervals) or a
	// doubled one fails whatever the median says.
	for _, cl := range libClients {
		t.Run(cl.name, func(t *testing.T) {
			_, addr := startServer(t, Config{PushInterval: interval})
			c := libDial(t, cl, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var arrivals []time.Time
			for len(arrivals) < pushes {
				typ, p, err := c.read(ctx)
				if err != nil {
					t.Fatalf("after %d pushes: %v", len(arrivals), err)
				}
				now := time.Now()
				if typ != libText || !libTimePush.Match(p) {
					t.Fatalf("unexpected %v message %q; want a time push", typ, libShort(p))
				}
				ts, err := time.ParseInLocation(TimeLayout, string(p), time.Local)
				if err != nil {
					t.Fatalf("time push %q: %v", p, err)
				}
				if d := now.Sub(ts); d < -2*time.Second || d > 2*time.Second {
					t.Errorf("time push %q is %v away from now (%v)", p, d, now.Format(TimeLayout))
				}
				arrivals = append(arrivals, now)
			}
			var gaps []string
			var ds []time.Duration
			for i := 1; i < len(arrivals); i++ {
				gap := arrivals[i].Sub(arrivals[i-1])
				gaps = append(gaps, gap.Round(time.Millisecond).String())
				ds = append(ds, gap)
				if gap > 2*interval-tolerance {
					t.Errorf("gap %d between pushes is %v: a push of every %v was missed", i, gap, interval)
				}
			}
			// A push too many (two in one interval) or too few moves
			// the whole span by an interval; a late read only its end.
			want := time.Duration(len(ds)) * interval
			if span := arrivals[len(arrivals)-1].Sub(arrivals[0]); span < want-interval/2 || span > want+interval/2 {
				t.Errorf("%d gaps span %v; want %v ± %v (one push per interval)", len(ds), span, want, interval/2)
			}
			slices.Sort(ds)
			if med := ds[len(ds)/2]; med < interval-tolerance || med > interval+tolerance {
				t.Errorf("median gap between pushes is %v; want %v ± %v", med, interval, tolerance)
			}
			t.Logf("%s: push gaps %s", cl.name, strings.Join(gaps, " "))
		})
	}
}

func TestClientLibClose(t *testing.T) {
	for _, cl := range libClients {
		t.Run(cl.name, func(t *testing.T) {
			s, addr := startServer(t, Config{PushInterval: 200 * time.Millisecond})
			c := libDial(t, cl, addr)
			// One echo first, so the close happens on a used connection.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.write(ctx, libText, []byte("bye soon")); err != nil {
				t.Fatal(err)
			}
			if typ, p, err := libReadSkipPushes(ctx, c); err != nil || typ != libText || string(p) != "bye soon" {
				t.Fatalf("echo: %v %q %v", typ, p, err)
			}
			if st := s.Stats(); st.Open != 1 || st.Live != 1 {
				t.Fatalf("before close: Open=%d Live=%d; want 1, 1", st.Open, st.Live)
			}
			if err := c.closeNormal(ctx); err != nil {
				t.Fatalf("%s: close 1000: %v", cl.name, err)
			}
			waitFor(t, 5*time.Second, "Stats().Live == 0 after a clean close", func() bool {
				return s.Stats().Live == 0
			})
			if st := s.Stats(); st.Open != 0 {
				t.Fatalf("after close: Open=%d; want 0", st.Open)
			}
		})
	}
}
