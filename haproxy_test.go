//go:build linux

package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHAProxyTLS runs deploy/haproxy.cfg itself (its "${VAR-default}"
// settings pointed at temporary ports, a test certificate and a short
// health-check period) in front of two wsmill processes: 20 wss:// clients
// are balanced over both instances; SIGTERM to one instance closes its
// clients with 1001, they reconnect through HAProxy and land on the other,
// whose clients never notice.
func TestHAProxyTLS(t *testing.T) {
	hp, err := exec.LookPath("haproxy")
	if err != nil {
		// Debian installs it in /usr/sbin, not on every user's PATH.
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("haproxy is not installed (%v); run: sh scripts/ensure-haproxy.sh", err)
		}
		hp = "/usr/sbin/haproxy"
	}
	dir := t.TempDir()
	pemPath, roots := writeTestCert(t, dir)

	addr1, addr2 := freePort(t), freePort(t)
	child := " -push-interval 300ms -drain-timeout 2s"
	a, logsA := startChild(t, "-addr "+addr1+child)
	b, _ := startChild(t, "-addr "+addr2+child)
	// a is waited for below (its exit status is checked); this cleanup runs
	// before startChild's, so the two Waits never overlap.
	type exit struct {
		err error
		at  time.Time
	}
	exitedA := make(chan exit, 1)
	waitingA := false
	t.Cleanup(func() {
		if waitingA {
			a.Process.Kill()
			<-exitedA
		}
	})

	front := freePort(t)
	sock := filepath.Join(dir, "admin.sock")
	proxy := exec.Command(hp, "-f", "deploy/haproxy.cfg", "-db")
	proxy.Env = append(os.Environ(),
		"WSMILL_HAPROXY_TEST=1",
		"WSMILL_ADMIN_SOCKET="+sock,
		"WSMILL_BIND="+front,
		"WSMILL_PEM="+pemPath,
		"WSMILL_BACKEND1="+addr1,
		"WSMILL_BACKEND2="+addr2,
		"WSMILL_CHECK_INTER=200ms",
		"WSMILL_MAXCONN=1000",
	)
	proxyLogs := &lockedBuffer{}
	proxy.Stdout, proxy.Stderr = proxyLogs, proxyLogs
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	proxyExited := make(chan struct{})
	go func() { proxy.Wait(); close(proxyExited) }()
	t.Cleanup(func() { proxy.Process.Kill(); <-proxyExited })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy output:\n%s", proxyLogs.String())
		}
	})

	dialer := &websocket.Dialer{
		HandshakeTimeout: 2 * time.Second,
		TLSClientConfig:  &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"},
	}
	url := "wss://" + front + "/ws"
	// dial connects through HAProxy and reads the greeting, retrying until
	// the deadline (HAProxy starting, a backend going down).
	dial := func(deadline time.Time) *websocket.Conn {
		t.Helper()
		for {
			c, err := dialGreeted(dialer, url)
			if err == nil {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("dial %s: %v", url, err)
			}
			select {
			case <-proxyExited:
				t.Fatalf("haproxy exited:\n%s", proxyLogs.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	// Ready: HAProxy accepts TLS, upgrades work, both servers are UP.
	start := time.Now()
	dial(start.Add(10 * time.Second)).Close()
	waitServers(t, sock, map[string]string{"ws1": "UP", "ws2": "UP"}, start.Add(10*time.Second))
	t.Logf("haproxy ready in %v", time.Since(start).Round(time.Millisecond))

	// The page behind the proxy (https://front, same origin over wss://)
	// passes the default Origin check, though the hop to wsmill is plain
	// http; another site's page gets 403 through the proxy too.
	page, _, err := dialer.Dial(url, http.Header{"Origin": {"https://" + front}})
	if err != nil {
		t.Fatalf("dial with the page's Origin https://%s: %v; want the upgrade (same origin)", front, err)
	}
	page.Close()
	if c, resp, err := dialer.Dial(url, http.Header{"Origin": {"https://evil.example"}}); err == nil {
		c.Close()
		t.Errorf("dial with Origin https://evil.example: upgraded; want 403")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("dial with Origin https://evil.example: %v; want 403", err)
	}

	baseA, baseB := countFDs(t, a.Process.Pid), countFDs(t, b.Process.Pid)
	const n = 20
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		clients[i] = dial(time.Now().Add(5 * time.Second))
		defer func() { clients[i].Close() }()
	}
	for i, c := range clients {
		if err := echoAndPush(c, fmt.Sprintf("echo %d", i)); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	fdA, fdB := countFDs(t, a.Process.Pid)-baseA, countFDs(t, b.Process.Pid)-baseB
	openA, openB := openConns(t, addr1), openConns(t, addr2)
	t.Logf("connections: instance 1 holds %d (+%d fds), instance 2 holds %d (+%d fds), of %d", openA, fdA, openB, fdB, n)
	if fdA < 1 || fdB < 1 {
		t.Fatalf("descriptors gained: instance 1 %d, instance 2 %d; want both >= 1", fdA, fdB)
	}
	if openA+openB != n {
		t.Fatalf("open WebSockets %d + %d; want %d in all", openA, openB, n)
	}
	// leastconn with connections opened one after another alternates.
	if d := openA - openB; d < -2 || d > 2 {
		t.Errorf("leastconn split %d / %d; want about even", openA, openB)
	}

	// SIGTERM instance 1: its clients get Close 1001, the others keep
	// getting pushes.
	if err := a.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sigAt := time.Now()
	waitingA = true
	go func() { err := a.Wait(); exitedA <- exit{err, time.Now()} }()

	errs := make([]error, n)
	done := make(chan time.Duration, n)
	for i, c := range clients {
		go func() { errs[i] = classify(c, sigAt); done <- time.Since(sigAt) }()
	}
	var lastClose time.Duration
	for range n {
		if d := <-done; d < 1500*time.Millisecond {
			lastClose = max(lastClose, d)
		}
	}
	var closed, alive []int
	for i, err := range errs {
		var ce *websocket.CloseError
		switch {
		case err == nil:
			alive = append(alive, i)
		case errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway:
			closed = append(closed, i)
		default:
			t.Errorf("client %d after SIGTERM: %v; want close 1001 or pushes", i, err)
		}
	}
	t.Logf("after SIGTERM: %d clients closed with 1001 (the last %v after the signal), %d still served",
		len(closed), lastClose.Round(time.Millisecond), len(alive))
	if len(closed) != openA || len(alive) != openB {
		t.Fatalf("closed %d, alive %d; want %d closed (instance 1's) and %d alive (instance 2's)",
			len(closed), len(alive), openA, openB)
	}

	select {
	case e := <-exitedA:
		waitingA = false
		if e.err != nil {
			t.Fatalf("instance 1 exit: %v; want status 0\n%s", e.err, logsA.String())
		}
		t.Logf("instance 1 exited %v after SIGTERM", e.at.Sub(sigAt).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatalf("instance 1 did not exit after SIGTERM\n%s", logsA.String())
	}

	// The closed clients reconnect through HAProxy and land on instance 2
	// (redispatched while the health check marks instance 1 DOWN).
	for _, i := range closed {
		clients[i].Close()
		clients[i] = dial(time.Now().Add(5 * time.Second))
	}
	for i, c := range clients {
		if err := echoAndPush(c, fmt.Sprintf("again %d", i)); err != nil {
			t.Errorf("client %d after the failover: %v", i, err)
		}
	}
	if got := openConns(t, addr2); got != n {
		t.Errorf("instance 2 holds %d WebSockets; want all %d", got, n)
	}
	waitServers(t, sock, map[string]string{"ws1": "DOWN", "ws2": "UP"}, time.Now().Add(5*time.Second))
	t.Logf("failover done %v after SIGTERM", time.Since(sigAt).Round(time.Millisecond))
}

// dialGreeted opens a WebSocket and reads the greeting.
func dialGreeted(d *websocket.Dialer, url string) (*websocket.Conn, error) {
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, msg, err := c.ReadMessage()
	if err == nil && string(msg) != "Hi Client!" {
		err = fmt.Errorf("greeting %q; want %q", msg, "Hi Client!")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// echoAndPush sends msg and reads until both its echo and a time push came.
func echoAndPush(c *websocket.Conn, msg string) error {
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	echoed, pushed := false, false
	for !echoed || !pushed {
		_, p, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("echo %v, push %v: %w", echoed, pushed, err)
		}
		switch {
		case string(p) == msg:
			echoed = true
		case isTimePush(p):
			pushed = true
		default:
			return fmt.Errorf("unexpected message %q", p)
		}
	}
	return nil
}

func isTimePush(p []byte) bool {
	_, err := time.Parse(TimeLayout, string(p))
	return err == nil
}

// classify reads c after the SIGTERM: it returns the read error (a
// *websocket.CloseError for a Close frame), or nil when c still gets time
// pushes well after the signal (its instance is not the one stopping).
func classify(c *websocket.Conn, sigAt time.Time) error {
	c.SetReadDeadline(sigAt.Add(4 * time.Second))
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if isTimePush(p) && time.Since(sigAt) > 1500*time.Millisecond {
			return nil
		}
	}
}

// openConns asks a wsmill instance directly how many WebSockets it holds.
func openConns(t *testing.T, addr string) int {
	t.Helper()
	// No keep-alive: an idle HTTP connection would count in the
	// instance's drain at shutdown.
	cl := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s statsSnapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return int(s.Open)
}

// serverStates reads the backend servers' status (UP, DOWN, ...) from the
// HAProxy admin socket's "show stat" CSV.
func serverStates(sock string) (map[string]string, error) {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(c)
	states := map[string]string{}
	col := -1
	for sc.Scan() {
		f := strings.Split(strings.TrimPrefix(sc.Text(), "# "), ",")
		if col < 0 {
			for i, name := range f {
				if name == "status" {
					col = i
				}
			}
			if col < 0 {
				return nil, fmt.Errorf("no status column in %q", sc.Text())
			}
			continue
		}
		if len(f) > col && f[0] == "wsmill" && f[1] != "BACKEND" {
			states[f[1]] = f[col]
		}
	}
	return states, sc.Err()
}

// waitServers polls the admin socket until the servers have the states.
func waitServers(t *testing.T, sock string, want map[string]string, deadline time.Time) {
	t.Helper()
	for {
		got, err := serverStates(sock)
		ok := err == nil
		for k, v := range want {
			ok = ok && strings.HasPrefix(got[k], v)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy servers: %v, %v; want %v", got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeTestCert writes a self-signed ECDSA certificate for 127.0.0.1 and
// its key into one PEM file, as HAProxy's "crt" takes it, and returns the
// file and a pool trusting the certificate.
func writeTestCert(t *testing.T, dir string) (string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsmill test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	path := filepath.Join(dir, "wsmill.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return path, pool
}
