// Package testpeer is what the workloads' tests run against: servers that
// follow the bench contract, written with gorilla/websocket (a real peer,
// in process), and the TestMain that lets a test binary serve as wsload's
// worker process.
package testpeer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// Server follows the servers' contract with gorilla/websocket.
func Server(t *testing.T, push time.Duration) string {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var mu sync.Mutex
		write := func(op int, p []byte) error {
			mu.Lock()
			defer mu.Unlock()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			return c.WriteMessage(op, p)
		}
		if write(websocket.TextMessage, []byte(wsclient.Greeting)) != nil {
			return
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			tk := time.NewTicker(push)
			defer tk.Stop()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					if write(websocket.TextMessage, []byte(time.Now().Format(wsclient.TimeLayout))) != nil {
						return
					}
				}
			}
		}()
		for {
			op, p, err := c.ReadMessage()
			if err != nil || write(op, p) != nil {
				return
			}
		}
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// Fanout greets and broadcasts "F"+unix ns every interval to
// every connection, with gorilla/websocket (one write lock per connection).
func Fanout(t *testing.T, interval time.Duration) string {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	type wconn struct {
		mu sync.Mutex
		c  *websocket.Conn
	}
	var mu sync.Mutex
	conns := map[*wconn]bool{}
	write := func(w *wconn, p []byte) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return w.c.WriteMessage(websocket.TextMessage, p)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(rw http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(rw, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		w := &wconn{c: c}
		if write(w, []byte(wsclient.Greeting)) != nil {
			return
		}
		mu.Lock()
		conns[w] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(conns, w)
			mu.Unlock()
		}()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	s := httptest.NewServer(mux)
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			p := fmt.Appendf(nil, "F%d", time.Now().UnixNano())
			mu.Lock()
			for w := range conns {
				write(w, p)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(stop); s.Close() })
	return strings.TrimPrefix(s.URL, "http://")
}

// Main is a workload package's TestMain: the pool re-executes the test
// binary with "__worker" (fleet.Main) to get client processes, so the
// binary must know the workers it may be asked to run.
func Main(m *testing.M, workers map[string]fleet.WorkerFunc) {
	for mode, fn := range workers {
		fleet.RegisterWorker(mode, fn)
	}
	if len(os.Args) > 1 && os.Args[1] == "__worker" {
		if err := fleet.Main(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// FlagCase is a command line that must fail, and a part of its error
// (an alias of a plain struct, so that the tables stay one line a case).
type FlagCase = struct {
	Name string
	Args []string
	Want string
}

// FlagErrors runs command with each case's args after base (an -addr
// nothing listens on, for a workload that dials) and checks that it fails
// with an error naming the problem: a bad command line ends with a clear
// error before anything is dialed, built or started.
func FlagErrors(t *testing.T, command func(context.Context, []string) error, base []string, cases []FlagCase) {
	t.Helper()
	cli.Stderr = io.Discard
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			err := command(context.Background(), append(append([]string(nil), base...), tt.Args...))
			if err == nil || !strings.Contains(err.Error(), tt.Want) {
				t.Fatalf("got %v; want an error containing %q", err, tt.Want)
			}
		})
	}
}
