package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMetricsOwnAddress: the real command serves /metrics on -metrics-addr
// and not on the public port, which keeps the page, /stats and /healthz,
// and logs where the metrics are.
func TestMetricsOwnAddress(t *testing.T) {
	addr, maddr := freePort(t), freePort(t)
	_, logs := startChild(t, "-addr "+addr+" -metrics-addr "+maddr+" -push-interval 1h")
	if want := "http://" + maddr + "/metrics"; !strings.Contains(logs.String(), want) {
		t.Errorf("start-up log does not say where the metrics are (%s):\n%s", want, logs.String())
	}
	if resp, _ := get(t, "http://"+addr+"/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the public port: %s; want 404", resp.Status)
	}
	for _, path := range []string{"/", "/stats", "/healthz"} {
		if resp, _ := get(t, "http://"+addr+path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on the public port: %s; want 200", path, resp.Status)
		}
	}
	if v := metricValue(scrape(t, maddr), "wsmill_open_connections"); v != 0 {
		t.Errorf("wsmill_open_connections on -metrics-addr = %v; want 0", v)
	}
	if resp, _ := get(t, "http://"+maddr+"/ws"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ws on the metrics address: %s; want 404 (only /metrics there)", resp.Status)
	}
}

// TestMetricsAddrInUse: a -metrics-addr that cannot be had stops the
// command at start, with the flag's name in the error.
func TestMetricsAddrInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WSMILL_TEST_MAIN=1",
		"WSMILL_TEST_ARGS=-addr "+freePort(t)+" -metrics-addr "+taken.Addr().String())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-metrics-addr") || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("err %v, output %q; want exit 1 naming -metrics-addr and 'address already in use'", err, out)
	}
}
