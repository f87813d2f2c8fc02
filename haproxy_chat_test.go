//go:build linux

package main

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHAProxyChat runs deploy/haproxy.cfg in front of two wsmill processes
// bridged over one nats-server (in this test process): two chat clients
// that HAProxy puts on different instances talk in one room.
func TestHAProxyChat(t *testing.T) {
	hp, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("haproxy is not installed (%v); run: sh scripts/ensure-haproxy.sh", err)
		}
		hp = "/usr/sbin/haproxy"
	}
	_, nurl := inProcessNATS(t)
	dir := t.TempDir()
	pemPath, roots := writeTestCert(t, dir)
	addr1, addr2 := freePort(t), freePort(t)
	startChild(t, "-addr "+addr1+" -nats "+nurl)
	startChild(t, "-addr "+addr2+" -nats "+nurl)

	front := freePort(t)
	sock := filepath.Join(dir, "admin.sock")
	proxy := exec.Command(hp, "-f", "deploy/haproxy.cfg", "-db")
	proxy.Env = append(os.Environ(), "WSMILL_HAPROXY_TEST=1", "WSMILL_ADMIN_SOCKET="+sock,
		"WSMILL_BIND="+front, "WSMILL_PEM="+pemPath, "WSMILL_BACKEND1="+addr1,
		"WSMILL_BACKEND2="+addr2, "WSMILL_CHECK_INTER=200ms", "WSMILL_MAXCONN=1000")
	logs := &lockedBuffer{}
	proxy.Stdout, proxy.Stderr = logs, logs
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Process.Kill(); proxy.Wait() })
	waitServers(t, sock, map[string]string{"ws1": "UP", "ws2": "UP"}, time.Now().Add(10*time.Second))

	dialer := &websocket.Dialer{HandshakeTimeout: 2 * time.Second,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}
	join := func(name string) *websocket.Conn {
		t.Helper()
		c, _, err := dialer.Dial("wss://"+front+"/chat?room=lobby&name="+name, nil)
		if err != nil {
			t.Fatalf("join as %s: %v\n%s", name, err, logs.String())
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ada, bob := join("ada"), join("bob")
	if o1, o2 := openConns(t, addr1), openConns(t, addr2); o1 != 1 || o2 != 1 {
		t.Fatalf("open connections %d / %d; want one on each instance", o1, o2)
	}
	// The joins subscribe on each instance's worker and the bridge sends
	// SUB: say until bob hears, then check the order from there.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ada.WriteMessage(websocket.TextMessage, []byte("ping"))
		bob.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := bob.ReadMessage(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob, on the other instance, never heard ada")
		}
		bob.Close()
		bob = join("bob")
	}
	if err := ada.WriteMessage(websocket.TextMessage, []byte("hello from the other instance")); err != nil {
		t.Fatal(err)
	}
	for {
		m := readChat(t, bob)
		if m.Text == "ping" {
			continue
		}
		if want := (chatMessage{Type: "message", Room: "lobby", Name: "ada", Text: "hello from the other instance"}); m != want {
			t.Fatalf("bob got %+v; want %+v", m, want)
		}
		break
	}
}
