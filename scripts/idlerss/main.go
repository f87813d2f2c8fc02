// Command idlerss measures the server RSS per idle connection of a wsmill
// binary, with and without permessage-deflate negotiated, in paired
// rounds: for each round and mode it starts the server, reads its VmRSS,
// opens -n connections (each upgrades, offering permessage-deflate in the
// deflate mode, and checks the answer), waits for the server to settle,
// reads VmRSS again and prints (after - before) / n.
//
//	go build -o /tmp/wsmill . && go run ./scripts/idlerss -bin /tmp/wsmill -n 19000 -src 127.0.0.2,127.0.0.3,127.0.0.4
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "/tmp/wsmill", "wsmill binary")
	n := flag.Int("n", 19000, "connections")
	src := flag.String("src", "127.0.0.2,127.0.0.3,127.0.0.4", "client source addresses")
	rounds := flag.Int("rounds", 2, "paired rounds (plain, deflate)")
	flag.Parse()
	srcs := strings.Split(*src, ",")
	for r := 1; r <= *rounds; r++ {
		for _, deflate := range []bool{false, true} {
			per, err := measure(*bin, *n, srcs, deflate)
			if err != nil {
				fmt.Fprintln(os.Stderr, "idlerss:", err)
				os.Exit(1)
			}
			fmt.Printf("round %d deflate=%v: %d connections, %.0f B of server RSS per connection\n", r, deflate, *n, per)
		}
	}
}

func measure(bin string, n int, srcs []string, deflate bool) (float64, error) {
	const addr = "127.0.0.1:18093"
	args := []string{"-addr", addr, "-push-interval", "1h", "-idle-timeout", "0"}
	if deflate {
		args = append(args, "-deflate")
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			return 0, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	before, err := rss(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	offer := ""
	if deflate {
		offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	}
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(srcs[i%len(srcs)])}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return 0, fmt.Errorf("dial %d: %w", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", offer)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReaderSize(c, 512)
		ext := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return 0, fmt.Errorf("conn %d: %w", i, err)
			}
			if strings.HasPrefix(strings.ToLower(line), "sec-websocket-extensions:") {
				ext = strings.TrimSpace(line[len("sec-websocket-extensions:"):])
			}
			if line == "\r\n" {
				break
			}
		}
		if deflate != strings.HasPrefix(ext, "permessage-deflate") {
			return 0, fmt.Errorf("conn %d: extensions %q (deflate=%v)", i, ext, deflate)
		}
	}
	time.Sleep(3 * time.Second)
	after, err := rss(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}

// rss is the process's VmRSS in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}
