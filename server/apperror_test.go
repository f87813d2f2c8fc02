//go:build linux

package server

import (
	"fmt"
	"net/http"
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
