package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue returns the value of name with exactly the given labels
// (pairs), or -1 when absent.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// TestMetricsAfterSession scripts a session (a known number of echoes, a
// rejected handshake, a close with code 4001) and checks the counters moved
// by exactly that much.
func TestMetricsAfterSession(t *testing.T) {
	addr, maddr := startMainMetrics(t)
	before := scrape(t, maddr)

	const echoes = 7
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "Hi Client!" {
		t.Fatalf("greeting: %q, %v", msg, err)
	}
	for i := range echoes {
		want := fmt.Sprintf("echo number %d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
			t.Fatal(err)
		}
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if string(msg) == want {
				break
			}
		}
	}
	open1 := scrape(t, maddr)
	if open := metricValue(open1, "wsmill_open_connections"); open != 1 {
		t.Errorf("wsmill_open_connections = %v; want 1", open)
	}

	// A handshake with the wrong version: 426, counted as reason=version.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(raw, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(raw).ReadString('\n')
	raw.Close()
	if err != nil || line != "HTTP/1.1 426 Upgrade Required\r\n" {
		t.Fatalf("version 8: got %q, %v; want 426", line, err)
	}

	// Close with 4001: the server echoes it.
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
	// Time pushes (every 200 ms) may still arrive before the answer.
	for err == nil {
		_, _, err = c.ReadMessage()
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("close: got %v; want 4001 echoed", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	var after map[string]*dto.MetricFamily
	for {
		after = scrape(t, maddr)
		if metricValue(after, "wsmill_open_connections") == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	delta := func(name string, labels ...string) float64 {
		return metricValue(after, name, labels...) - max(metricValue(before, name, labels...), 0)
	}
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wsmill_upgrades_total", nil, 1},
		{"wsmill_messages_total", []string{"direction", "in"}, echoes},
		{"wsmill_messages_total", []string{"direction", "out"}, echoes + 1}, // + the greeting
		{"wsmill_message_bytes_total", []string{"direction", "in"}, float64(echoes * len("echo number 0"))},
		{"wsmill_handshakes_rejected_total", []string{"reason", "version"}, 1},
		{"wsmill_handshakes_rejected_total", []string{"reason", "method"}, 0},
		{"wsmill_closes_total", []string{"direction", "in", "code", "4xxx"}, 1},
		{"wsmill_closes_total", []string{"direction", "out", "code", "4xxx"}, 1},
		{"wsmill_open_connections", nil, 0},
		{"wsmill_offload_jobs_total", nil, 0}, // the demo blocks on nothing
		{"wsmill_offload_refused_total", nil, 0},
		{"wsmill_offload_dropped_total", nil, 0},
		{"wsmill_offload_pending", nil, 0},
	} {
		got := delta(tt.name, tt.labels...)
		if tt.name == "wsmill_open_connections" {
			got = metricValue(after, tt.name)
		}
		if got != tt.want {
			t.Errorf("%s%v moved by %v; want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if v := metricValue(after, "wsmill_worker_busy_seconds_total"); v <= 0 {
		t.Errorf("wsmill_worker_busy_seconds_total = %v; want > 0", v)
	}
	if v := metricValue(after, "wsmill_wheel_tick_lag_max_seconds"); v < 0 {
		t.Errorf("wsmill_wheel_tick_lag_max_seconds missing")
	}
	// Plain HTTP connections (the page's requests; none now, and the
	// scrape goes to the metrics address, not through the public port):
	// the series is there, and within the descriptors. That the engine
	// counts held ones is tested in server (TestHTTPHandoffStalledBody).
	if v, d := metricValue(after, "wsmill_http_connections"), metricValue(after, "wsmill_descriptors"); v != 0 || d < v {
		t.Errorf("wsmill_http_connections = %v, wsmill_descriptors = %v; want 0 (the scrape is not on the public port), and descriptors at least as many", v, d)
	}
	// The kernel's side: the machine's TCP memory and its limit, this
	// server's sockets (none open now; every clean close was graceful).
	if v, m := metricValue(after, "wsmill_kernel_tcp_memory_pages"), metricValue(after, "wsmill_kernel_tcp_memory_limit_pages", "level", "max"); v < 0 || m <= 0 {
		t.Errorf("wsmill_kernel_tcp_memory_pages = %v, limit max = %v; want both from /proc", v, m)
	}
	for _, name := range []string{"wsmill_kernel_tcp_orphans", "wsmill_socket_unsent_bytes", "wsmill_socket_unread_bytes"} {
		if v := metricValue(after, name); v < 0 {
			t.Errorf("%s missing", name)
		}
	}
	if v := delta("wsmill_resets_total"); v != 0 {
		t.Errorf("wsmill_resets_total moved by %v after clean closes; want 0", v)
	}
	if v := metricValue(open1, "wsmill_socket_queue_sampled", "of", "held"); v != 1 {
		t.Errorf("wsmill_socket_queue_sampled{of=held} with one client = %v; want 1", v)
	}
	if v := metricValue(after, "go_goroutines"); v <= 0 {
		t.Errorf("go_goroutines missing: the runtime collector is not registered")
	}
}

// TestStatsJSON: /stats is the page's chart source.
func TestStatsJSON(t *testing.T) {
	addr := startMain(t)
	resp, body := get(t, "http://"+addr+"/stats")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /stats: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, key := range []string{`"open":`, `"upgraded":`, `"messages_in":`, `"pushes":`, `"time":`} {
		if !strings.Contains(body, key) {
			t.Errorf("/stats %s lacks %s", body, key)
		}
	}
}

// TestDefaultMetricsAddrLoopback: by default the metrics stay on the
// machine (the loopback interface), off the public port.
func TestDefaultMetricsAddrLoopback(t *testing.T) {
	host, _, err := net.SplitHostPort(defaultMetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Errorf("defaultMetricsAddr %q; want a loopback address", defaultMetricsAddr)
	}
}
