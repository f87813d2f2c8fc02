package echo

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// gorillaDeflateServer greets and echoes with gorilla, compression on or off.
func gorillaDeflateServer(t *testing.T, compress bool) string {
	up := websocket.Upgrader{EnableCompression: compress}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if c.WriteMessage(websocket.TextMessage, []byte(wsclient.Greeting)) != nil {
			return
		}
		for {
			op, p, err := c.ReadMessage()
			if err != nil || c.WriteMessage(op, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// TestEchoDeflateEndToEnd runs the echo with -deflate -payload json
// against gorilla with compression on (accepted: fewer bytes on the wire
// both ways) and off (declined: plain frames).
func TestEchoDeflateEndToEnd(t *testing.T) {
	const size = 1024
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprintf("server compression %v", compress), func(t *testing.T) {
			addr := gorillaDeflateServer(t, compress)
			res, err := Run(context.Background(), Config{Target: cli.Target{Addr: addr, PID: os.Getpid()}, C: 4, Size: size, K: 2,
				Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond, Greeting: true, Dialing: fleet.Dialing{Procs: 1, DialConc: 4, DialTimeout: 5 * time.Second},
				Quiet: true, Deflate: true, Payload: "json"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Msgs == 0 || res.Mismatch != 0 || res.Lost != 0 || !res.Deflate || res.Payload != "json" || !res.Text {
				t.Fatalf("%+v", res)
			}
			if compress {
				if res.DeflateConns != 4 || res.WireOutPerMsg <= 0 || res.WireOutPerMsg > size/2 || res.WireInPerMsg <= 0 || res.WireInPerMsg > size/2 {
					t.Fatalf("compressed: deflate on %d of 4, wire %.0f out / %.0f in per %d-byte message", res.DeflateConns, res.WireOutPerMsg, res.WireInPerMsg, size)
				}
				return
			}
			// Plain: 2 + 2 (16-bit length) + 4 (mask) out, 4 in.
			if res.DeflateConns != 0 || res.WireOutPerMsg != size+8 || res.WireInPerMsg != size+4 {
				t.Fatalf("declined: deflate on %d, wire %.0f out / %.0f in; want 0, %d / %d", res.DeflateConns, res.WireOutPerMsg, res.WireInPerMsg, size+8, size+4)
			}
		})
	}
}

func TestEchoPayloadFlag(t *testing.T) {
	for _, tt := range []struct {
		payload string
		size    int
		ok      bool
	}{{"seq", 1, true}, {"", 1, true}, {"json", 1024, true}, {"json", 10, false}, {"random", 1024, false}} {
		c := Config{Payload: tt.payload, Size: tt.size}
		if err := c.checkPayload(); (err == nil) != tt.ok {
			t.Errorf("-payload %q -size %d: got %v; want ok %v", tt.payload, tt.size, err, tt.ok)
		}
	}
}
