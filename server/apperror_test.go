//go:build linux

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// errorSink collects what Config.OnError reports.
type errorSink chan error

func (e errorSink) report(err error) {
	select {
	case e <- err:
	default: // the test reads the first few; never block a worker
	}
}

// next waits for the next report.
func (e errorSink) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-e:
		return err
	case <-time.After(3 * time.Second):
		t.Fatal("nothing reported through OnError within 3 s")
		return nil
	}
}

// TestUpgradeHookBadStatus: an OnUpgrade that returns a status which is
// neither 0 nor a refusal (300-599) is an application bug. The client
// still gets 500 and the refusal is counted (reason "app"), and OnError
// now says which status it was. Before the fix nothing was reported.
func TestUpgradeHookBadStatus(t *testing.T) {
	for _, status := range []int{200, 101, 1, 299, 600, 999, -1} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			errs := make(errorSink, 4)
			cfg := rawConfig()
			cfg.OnError = errs.report
			cfg.OnUpgrade = func(*Request) (any, int) { return nil, status }
			s, addr := startServer(t, cfg)
			d := gorilla.Dialer{HandshakeTimeout: rawTimeout}
			c, resp, err := d.Dial("ws://"+addr+"/ws", nil)
			if err == nil {
				c.Close()
				t.Fatal("upgrade accepted; want 500")
			}
			if resp == nil || resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("dial: %v (response %v); want 500", err, resp)
			}
			resp.Body.Close()
			got := errs.next(t).Error()
			for _, want := range []string{fmt.Sprintf("OnUpgrade returned status %d", status), "300-599", "answered 500"} {
				if !strings.Contains(got, want) {
					t.Errorf("OnError: got %q; want it to contain %q", got, want)
				}
			}
			waitFor(t, 2*time.Second, "rejected{app} = 1", func() bool { return s.Stats().RejectedBy[RejectApp] == 1 })
		})
	}
}

// panicApp panics in the callback named at, with value.
type panicApp struct {
	at     string
	value  any
	opened chan Conn
}

func (a *panicApp) OnOpen(c Conn) {
	a.opened <- c
	if a.at == "OnOpen" {
		panic(a.value)
	}
}

func (a *panicApp) OnMessage(c Conn, op Opcode, p []byte) {
	if a.at == "OnMessage" {
		panic(a.value)
	}
}

func (a *panicApp) OnClose(c Conn, code CloseCode) {
	if a.at == "OnClose" {
		panic(a.value)
	}
}

var errBadState = errors.New("room: bad state")

// TestPanicReport: a panic in any application callback reaches OnError
// as a *PanicError with what a user debugging a 1011 needs: which
// callback, which connection (handle, descriptor and address), the panic
// value and the stack. Before the fix the report was "server: application
// panic: boom" (or "server: OnUpgrade panic: boom"), nothing more.
func TestPanicReport(t *testing.T) {
	for _, tt := range []struct {
		at    string
		value any
	}{
		{"OnOpen", "boom in open"},
		{"OnMessage", errBadState},
		{"OnClose", 42},
		{"OnUpgrade", "boom in upgrade"},
		{"Push.Frame", "boom in push"},
	} {
		t.Run(tt.at, func(t *testing.T) {
			errs := make(errorSink, 4)
			app := &panicApp{at: tt.at, value: tt.value, opened: make(chan Conn, 1)}
			cfg := rawConfig()
			cfg.App, cfg.OnError = app, errs.report
			switch tt.at {
			case "OnUpgrade":
				cfg.OnUpgrade = func(*Request) (any, int) { panic(tt.value) }
			case "Push.Frame":
				cfg.PushInterval = 20 * time.Millisecond
				cfg.Pushes = []Push{{Frame: func(time.Time) *Frame { panic(tt.value) }}}
			}
			s, addr := startServer(t, cfg)
			var nc net.Conn
			d := gorilla.Dialer{
				HandshakeTimeout: rawTimeout,
				NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, a)
					nc = c
					return c, err
				},
			}
			ws, resp, err := d.Dial("ws://"+addr+"/ws", nil)
			if resp != nil {
				resp.Body.Close()
			}
			var h Conn
			if tt.at == "OnUpgrade" {
				if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
					t.Fatalf("dial: %v; want a 500", err)
				}
			} else {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer ws.Close()
				h = <-app.opened
			}
			switch tt.at {
			case "OnMessage":
				ws.WriteMessage(gorilla.TextMessage, []byte("hi"))
			case "OnClose":
				ws.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""), time.Now().Add(rawTimeout))
			}
			err = errs.next(t)

			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("OnError got %T %q; want a *PanicError", err, err)
			}
			type fields struct {
				Callback   string
				Conn       Conn
				FD         int
				RemoteAddr netip.AddrPort
				Value      any
			}
			got := fields{pe.Callback, pe.Conn, pe.FD, pe.RemoteAddr, pe.Value}
			want := fields{Callback: tt.at, FD: -1, Value: tt.value}
			if tt.at != "Push.Frame" {
				want.Conn = h // zero for OnUpgrade: nothing was open
				want.RemoteAddr = netip.MustParseAddrPort(nc.LocalAddr().String())
				want.FD = pe.FD // checked here: the server's descriptor is not ours to know
				if pe.FD <= 2 || h.c != nil && pe.FD != h.c.fd {
					t.Errorf("FD: got %d; want the connection's descriptor", pe.FD)
				}
			}
			if got != want {
				t.Errorf("PanicError: got %+v; want %+v", got, want)
			}
			if !bytes.HasPrefix(pe.Stack, []byte("goroutine ")) || !bytes.Contains(pe.Stack, []byte("TestPanicReport")) && !bytes.Contains(pe.Stack, []byte("panicApp")) {
				t.Errorf("Stack: got %q; want the panicking goroutine's, down to the callback", pe.Stack)
			}
			line, stack, _ := strings.Cut(err.Error(), "\n")
			wantLine := fmt.Sprintf("server: %s panicked: %v", tt.at, tt.value)
			if pe.FD >= 0 {
				wantLine = fmt.Sprintf("server: %s panicked (fd %d, %v): %v", tt.at, pe.FD, want.RemoteAddr, tt.value)
			}
			if line != wantLine || stack != string(pe.Stack) {
				t.Errorf("Error(): got %q then %d bytes; want %q then the stack", line, len(stack), wantLine)
			}
			if v, ok := tt.value.(error); ok && !errors.Is(err, v) {
				t.Errorf("errors.Is(err, %v) = false; want true (Unwrap gives the panic value)", v)
			}
			if got := s.Stats().AppPanics; got == 0 {
				t.Errorf("AppPanics = 0; want the panic counted")
			}
		})
	}
}
