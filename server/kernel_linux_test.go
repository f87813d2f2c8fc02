package server

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What the kernel holds for a connection: the tests here look at the
// server's sockets from outside, as an operator would (/proc/net/tcp is
// what ss reads), with clients that stop reading.

// tcpSocket is one line of /proc/net/tcp.
type tcpSocket struct {
	local, remote netip4
	state         int // TCP_ESTABLISHED 1, FIN_WAIT1 4, ...
	txQueue       int // bytes sent and not acknowledged, or not sent yet (SIOCOUTQ)
	rxQueue       int
}

type netip4 struct {
	ip   [4]byte
	port int
}

const (
	tcpEstablished = 1
	tcpFinWait1    = 4
	tcpClose       = 7
)

// procTCP reads /proc/net/tcp and returns the sockets whose local port is
// port.
func procTCP(t testing.TB, port int) []tcpSocket {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatalf("open /proc/net/tcp: %v", err)
	}
	defer f.Close()
	var out []tcpSocket
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		local, err1 := parseHexAddr(fields[1])
		remote, err2 := parseHexAddr(fields[2])
		st, err3 := strconv.ParseInt(fields[3], 16, 32)
		tx, rx, _ := strings.Cut(fields[4], ":")
		txq, err4 := strconv.ParseInt(tx, 16, 64)
		rxq, err5 := strconv.ParseInt(rx, 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
			t.Fatalf("/proc/net/tcp line %q: cannot parse", sc.Text())
		}
		if local.port == port {
			out = append(out, tcpSocket{local, remote, int(st), int(txq), int(rxq)})
		}
	}
	return out
}

// parseHexAddr parses "0100007F:1F90" (IPv4 in host byte order, port).
func parseHexAddr(s string) (netip4, error) {
	ip, port, ok := strings.Cut(s, ":")
	b, err := hex.DecodeString(ip)
	if !ok || err != nil || len(b) != 4 {
		return netip4{}, fmt.Errorf("bad address %q", s)
	}
	p, err := strconv.ParseInt(port, 16, 32)
	if err != nil {
		return netip4{}, err
	}
	return netip4{ip: [4]byte{b[3], b[2], b[1], b[0]}, port: int(p)}, nil
}

func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// stuckClient is a client whose receive buffer is tiny and that stops
// reading after the greeting: whatever the server sends it piles up on the
// server's side.
type stuckClient struct {
	rc *rawConn
	tc *net.TCPConn
}

func dialStuck(t *testing.T, addr string) *stuckClient {
	t.Helper()
	d := net.Dialer{Timeout: rawTimeout, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
		return serr
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, 512)}
	rc.write([]byte(rawUpgradeRequest()))
	rc.expectUpgraded(rawKey)
	rc.expectGreeting()
	return &stuckClient{rc: rc, tc: nc.(*net.TCPConn)}
}

// flood sends n bytes of 60,000-byte echo requests and ignores write
// errors (the server may reset the connection before the last ones).
func (sc *stuckClient) flood(n int) {
	payload := make([]byte, 60000)
	frame := rawFrame(rawOpBinary, true, payload, true)
	sc.tc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for sent := 0; sent < n; sent += len(payload) {
		if _, err := sc.tc.Write(frame); err != nil {
			return
		}
	}
}

// tcpState is the client socket's TCP state (TCP_INFO).
func (sc *stuckClient) tcpState(t testing.TB) int {
	rc, err := sc.tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st int
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			st = int(info.State)
		}
	})
	return st
}

// watchTxQueue samples the largest tx_queue of the server's sockets on port
// until stop is called.
func watchTxQueue(t testing.TB, port int) (stop func() int) {
	var mu sync.Mutex
	peak := 0
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			for _, s := range procTCP(t, port) {
				mu.Lock()
				peak = max(peak, s.txQueue)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() int {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// TestStuckClientsHoldBoundedKernelMemory: clients that send echo requests
// and never read make the server's kernel queue the echoes. The send
// buffer cap bounds what each socket holds; when the server gives up on
// them (overflow 1008, then the close timeout), it resets: no orphan keeps
// the unsent bytes, and the clients see the connection end.
func TestStuckClientsHoldBoundedKernelMemory(t *testing.T) {
	const clients = 5
	cfg := rawConfig()
	cfg.CloseTimeout = 300 * time.Millisecond
	s, addr := startServer(t, cfg)
	port := portOf(t, addr)
	sndbuf := s.Config().SendBuffer

	var cs []*stuckClient
	for range clients {
		cs = append(cs, dialStuck(t, addr))
	}
	stop := watchTxQueue(t, port)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.flood(4 << 20) })
	}
	wg.Wait()
	rawWaitLive(t, s, 0, 10*time.Second)
	peak := stop()
	if got := s.Stats().Overflows; got != clients {
		t.Errorf("Overflows: got %d; want %d (every client passed -max-outbound)", got, clients)
	}
	// The kernel doubles SO_SNDBUF for its own overhead; the data it keeps
	// stays within that.
	if limit := 2 * sndbuf; peak > limit {
		t.Errorf("peak unsent bytes on one server socket: got %d; want at most %d (2 × SendBuffer %d)", peak, limit, sndbuf)
	}
	// The descriptors are closed; nothing of the server's may stay behind
	// holding data, and the clients must know it is over.
	time.Sleep(100 * time.Millisecond)
	for _, sk := range procTCP(t, port) {
		if sk.txQueue > 0 {
			t.Errorf("server socket %v→%v after close: state %d holds %d unsent bytes; want no orphan with data", sk.local, sk.remote, sk.state, sk.txQueue)
		}
	}
	for i, c := range cs {
		if st := c.tcpState(t); st == tcpEstablished {
			t.Errorf("client %d: TCP state %d (established) after the server gave up; want the connection ended (reset)", i, st)
		}
	}
	st := s.Stats()
	if st.Resets < clients {
		t.Errorf("Stats().Resets: got %d; want at least %d", st.Resets, clients)
	}
}

// TestShutdownResetsStuckClient: a client that stopped reading still holds
// unsent echoes when Shutdown's drain ends; the server resets it rather than
// leaving the bytes to an orphan.
func TestShutdownResetsStuckClient(t *testing.T) {
	cfg := rawConfig()
	cfg.MaxOutbound = 8 << 20 // no overflow: the queue keeps it all
	s, err := New(testConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	addr := ln.Addr().String()
	port := portOf(t, addr)
	c := dialStuck(t, addr)
	c.flood(1 << 20)
	waitFor(t, 5*time.Second, "echoes queued", func() bool {
		for _, sk := range procTCP(t, port) {
			if sk.txQueue > 0 {
				return true
			}
		}
		return false
	})
	// What an operator sees of it in /metrics.
	ss := s.SampleSockets(0)
	if ss.Sockets != 1 || ss.Sampled != 1 || ss.Unsent <= 0 || ss.MaxUnsent > 2*s.Config().SendBuffer {
		t.Errorf("SampleSockets: got %+v; want 1 socket sampled, 0 < unsent ≤ %d", ss, 2*s.Config().SendBuffer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s.Shutdown(ctx)
	time.Sleep(100 * time.Millisecond)
	for _, sk := range procTCP(t, port) {
		if sk.txQueue > 0 {
			t.Errorf("server socket %v→%v after Shutdown: state %d holds %d unsent bytes; want none", sk.local, sk.remote, sk.state, sk.txQueue)
		}
	}
	if st := c.tcpState(t); st == tcpEstablished {
		t.Errorf("client TCP state after Shutdown: %d (established); want it ended", st)
	}
}

// byeApp echoes, and closes with 1000 when a client says "bye".
type byeApp struct{ echoApp }

func (byeApp) OnMessage(c Conn, op Opcode, p []byte) {
	if string(p) == "bye" {
		c.Close(CloseNormal, "")
		return
	}
	c.Send(op, p, Reliable)
}

// TestCleanCloseIsGraceful: a Close exchange with a client that reads ends
// with a FIN, never a reset, whichever side sent the first Close.
func TestCleanCloseIsGraceful(t *testing.T) {
	cfg := rawConfig()
	cfg.App = byeApp{}
	s, addr := startServer(t, cfg)
	for i := range 20 {
		rc := rawHandshake(t, addr)
		rc.echo(rawOpText, []byte("hello"))
		if i%2 == 0 { // the client closes first
			rc.write(rawFrame(rawOpClose, true, rawCloseBody(1000, ""), true))
		} else { // the server does
			rc.write(rawFrame(rawOpText, true, []byte("bye"), true))
			f := rc.next()
			if f.op != rawOpClose {
				t.Fatalf("after bye: got %v; want Close", f)
			}
			rc.write(rawFrame(rawOpClose, true, f.payload, true))
			rc.expectEOF(rawTimeout) // a reset would fail here
			continue
		}
		rc.expectClose(1000) // then EOF: a reset would fail here
	}
	rawWaitLive(t, s, 0, 5*time.Second)
	if got := s.Stats().Resets; got != 0 {
		t.Errorf("Stats().Resets after clean closes: got %d; want 0", got)
	}
}

// sinkApp drops every message; "stall" holds the worker until release is
// closed.
type sinkApp struct {
	echoApp
	stalled, release chan struct{}
}

func (a *sinkApp) OnMessage(c Conn, op Opcode, p []byte) {
	if string(p) == "stall" {
		close(a.stalled)
		<-a.release
	}
}

// TestFastSenderHoldsBoundedKernelMemory: a client that sends as fast as it
// can grows an autotuned receive buffer (the server drains it quickly);
// when the worker then falls behind, everything the window allowed waits
// in the kernel. RecvBuffer bounds it.
func TestFastSenderHoldsBoundedKernelMemory(t *testing.T) {
	app := &sinkApp{stalled: make(chan struct{}), release: make(chan struct{})}
	cfg := rawConfig()
	cfg.App, cfg.Workers = app, 1
	cfg.MaxBuffered = 1 << 30
	s, addr := startServer(t, cfg)
	port := portOf(t, addr)
	rcvbuf := s.Config().RecvBuffer

	rc := rawDial(t, addr)
	rc.write([]byte(rawUpgradeRequest()))
	rc.expectUpgraded(rawKey)
	rc.expectGreeting()
	frame := rawFrame(rawOpBinary, true, make([]byte, 60000), true)
	tc := rc.nc.(*net.TCPConn)
	// Grow the window: 64 MiB as fast as the server takes it.
	tc.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for sent := 0; sent < 64<<20; sent += len(frame) {
		if _, err := tc.Write(frame); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	rc.write(rawFrame(rawOpText, true, []byte("stall"), true))
	<-app.stalled
	// The worker is stuck: whatever the client writes now waits in the
	// server's receive queue, as far as the window lets it.
	done := make(chan struct{})
	go func() {
		defer close(done)
		tc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			if _, err := tc.Write(frame); err != nil {
				return
			}
		}
	}()
	<-done
	peak := 0
	for _, sk := range procTCP(t, port) {
		peak = max(peak, sk.rxQueue)
	}
	close(app.release)
	if limit := 2 * rcvbuf; peak > limit {
		t.Errorf("unread bytes on the server socket while its worker is behind: got %d; want at most %d (2 × RecvBuffer %d)", peak, limit, rcvbuf)
	}
	if peak == 0 {
		t.Errorf("unread bytes on the server socket while its worker is behind: got 0; the test did not fill it")
	}
}

func TestSampleSocketsStride(t *testing.T) {
	s, addr := startServer(t, rawConfig())
	for range 10 {
		rawHandshake(t, addr)
	}
	rawWaitLive(t, s, 10, 5*time.Second)
	if ss := s.SampleSockets(0); ss.Sockets != 10 || ss.Sampled != 10 {
		t.Errorf("SampleSockets(0) of 10: got %+v; want all 10 read", ss)
	}
	if ss := s.SampleSockets(3); ss.Sockets != 10 || ss.Sampled < 2 || ss.Sampled > 4 {
		t.Errorf("SampleSockets(3) of 10: got %+v; want about 3 read", ss)
	}
}
