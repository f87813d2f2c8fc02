package proc

// Reading a process's resource use from /proc (Linux only).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStat is one sample of a process's resource use.
type Stat struct {
	RSS     int64   `json:"rss_bytes"`     // VmRSS
	Data    int64   `json:"vm_data_bytes"` // VmData: committed, touched or not
	Threads int     `json:"threads"`       // Threads
	FDs     int     `json:"fds"`           // entries in /proc/PID/fd
	CPU     float64 `json:"cpu_s"`         // utime+stime, seconds
}

// readProcStat samples /proc/PID/{status,fd,stat}.
func ReadStat(pid int) (Stat, error) {
	var ps Stat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, fmt.Errorf("server process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS", "VmData":
			kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			if err != nil {
				return ps, fmt.Errorf("%s %q: %w", k, v, err)
			}
			if k == "VmRSS" {
				ps.RSS = kb << 10
			} else {
				ps.Data = kb << 10
			}
		case "Threads":
			ps.Threads, _ = strconv.Atoi(v)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return ps, fmt.Errorf("server process %d fds: %w", pid, err)
	}
	ps.FDs = len(fds)
	ps.CPU, err = CPU(pid)
	return ps, err
}

// tcpCloseWait is TCP state 08 in /proc/net/tcp: the peer sent FIN and
// this side has not closed yet.
const TCPCloseWait = "08"

// countTCPState counts the sockets in the network namespace of process pid
// whose local port is port and whose state is st (hex, as in
// /proc/net/tcp). On loopback the clients' sockets are listed too, but
// their local ports are ephemeral, not the server's.
func CountTCPState(pid, port int, st string) (int, error) {
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			if f == "tcp6" && os.IsNotExist(err) {
				continue
			}
			return 0, err
		}
		n += CountTCPLines(b, port, st)
	}
	return n, nil
}

// countTCPLines counts the lines of a /proc/net/tcp{,6} table with local
// port port and state st.
func CountTCPLines(table []byte, port int, st string) int {
	n := 0
	for _, line := range strings.Split(string(table), "\n") {
		// "  12: 0100007F:1F90 0100007F:D2A4 08 ..."
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != st {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			continue
		}
		if p, err := strconv.ParseUint(f[1][i+1:], 16, 16); err == nil && int(p) == port {
			n++
		}
	}
	return n
}

// procCPU returns utime+stime of a process in seconds, from /proc/PID/stat.
func CPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'. Field 3 is the state, 14 utime, 15 stime.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return float64(ut+st) / float64(ClockTicks()), nil
}

var clkTck int64

// clockTicks is sysconf(_SC_CLK_TCK), read from the auxiliary vector
// (AT_CLKTCK) since there is no cgo; 100 when it cannot be read.
func ClockTicks() int64 {
	if clkTck != 0 {
		return clkTck
	}
	clkTck = 100
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		const atClkTck = 17
		for i := 0; i+16 <= len(b); i += 16 {
			k := binary.NativeEndian.Uint64(b[i:])
			v := binary.NativeEndian.Uint64(b[i+8:])
			if k == atClkTck && v > 0 {
				clkTck = int64(v)
				break
			}
			if k == 0 {
				break
			}
		}
	}
	return clkTck
}

// rusageCPU returns user+system CPU seconds of this process (who =
// RUSAGE_SELF) or of its waited-for children (RUSAGE_CHILDREN).
func RusageCPU(who int) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return tvSec(ru.Utime) + tvSec(ru.Stime)
}

func tvSec(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// clientCPU is RUSAGE_SELF + RUSAGE_CHILDREN: this process and the worker
// processes it has already reaped.
func SelfCPU() float64 {
	return RusageCPU(syscall.RUSAGE_SELF) + RusageCPU(syscall.RUSAGE_CHILDREN)
}

// mib formats bytes as MiB.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// stopProcess sends SIGTERM to pid and waits, up to limit, until it has
// exited: gone from /proc, or a zombie (its descriptors are closed by
// then) that its parent has not reaped yet.
func Stop(ctx context.Context, pid int, limit time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop server process %d: %w", pid, err)
	}
	deadline := time.Now().Add(limit)
	for !Exited(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("server process %d did not exit within %v of SIGTERM", pid, limit)
		}
		if err := Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// procExited reports whether pid has exited: no /proc/PID/stat, or state
// Z (zombie) or X (dead).
func Exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err) || errors.Is(err, syscall.ESRCH)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st == 'Z' || st == 'X'
}

// Sleep waits d or until ctx ends, whichever is first, and returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
