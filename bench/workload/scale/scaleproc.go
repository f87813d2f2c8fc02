package scale

// wsload scale's processes: the wsmill servers it starts, the client
// processes (the hidden "__scale" subcommand, scaleclient_linux.go), and
// the JSON lines between the parent and the clients.
//
// The clients have their own protocol, not the "__worker" one of
// children.go: an epoll loop that dials in steps and measures windows on
// command is a different kind of worker from the goroutine-per-connection
// ones, and its messages (dial targets, absolute window times) are its own.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/target"
)

// scaleSpec is everything one client process needs.
type scaleSpec struct {
	Index       int           `json:"index"`
	Addr        string        `json:"addr"`
	Src         []string      `json:"src,omitempty"`
	Offset      int           `json:"offset"` // global index of its first connection: source = Src[g % len]
	Interval    time.Duration `json:"interval"`
	DialConc    int           `json:"dial_conc"`
	DialTimeout time.Duration `json:"dial_timeout"`
}

// scaleCmd goes from the parent to a client process.
type scaleCmd struct {
	Cmd   string `json:"cmd"`             // dial, stop, hold, shutdown, close
	N     int    `json:"n,omitempty"`     // dial: connections to have attempted, over all steps
	Start int64  `json:"start,omitempty"` // hold: window, unix ns
	End   int64  `json:"end,omitempty"`
}

// scaleEvent goes from a client process to the parent.
type scaleEvent struct {
	Type       string         `json:"type"` // progress, dialed, held, shutdown, closed, fatal (exit: made by the parent)
	Worker     int            `json:"worker"`
	OK         int            `json:"ok,omitempty"`   // greeted in this step
	Fail       int            `json:"fail,omitempty"` // failed in this step
	Open       int            `json:"open"`           // connections open now
	Errors     map[string]int `json:"errors,omitempty"`
	Lost       map[string]int `json:"lost,omitempty"`   // dropped by the server, cumulative
	Closes     map[string]int `json:"closes,omitempty"` // ends after "shutdown"
	Unexpected map[string]int `json:"unexpected,omitempty"`
	DialStart  int64          `json:"dial_start,omitempty"`
	DialEnd    int64          `json:"dial_end,omitempty"`
	Hold       *scaleHoldPart `json:"hold,omitempty"`
	Err        string         `json:"err,omitempty"`
}

// scaleHoldPart is one client process's account of a push window.
type scaleHoldPart struct {
	Conns      int    `json:"conns"`     // open when the window started
	Expected   int    `json:"expected"`  // pushes per connection: window / interval
	Received   int64  `json:"received"`  // Σ min(count, expected)
	Extra      int64  `json:"extra"`     // pushes beyond expected (a phase near the window's start)
	InWindow   int64  `json:"in_window"` // pushes that arrived inside the window proper (for CPU per push)
	Missed     int    `json:"missed"`    // connections with fewer than expected
	Missing    int64  `json:"missing"`   // Σ shortfall
	Lost       int    `json:"lost"`      // connections that ended during the window
	Stale      int64  `json:"stale"`     // pushes whose clock time was over 2 s off
	Gaps       int64  `json:"gaps"`
	GapMaxNs   int64  `json:"gap_max_ns"`
	PhaseMaxNs int64  `json:"phase_max_ns"`
	StallMaxNs int64  `json:"stall_max_ns"` // longest time between two loop wake-ups
	StalledNs  int64  `json:"stalled_ns"`   // time in wake-up gaps over 50 ms
	GapHist    string `json:"gap_hist"`     // |gap − interval|, µs
	PhaseHist  string `json:"phase_hist"`   // lag behind the connection's phase, µs
}

// scaleClient is the parent's handle on one client process.
type scaleClient struct {
	idx    int
	Pid    int
	n      int // connections it holds at the last step
	cmd    *exec.Cmd
	enc    *json.Encoder
	mu     sync.Mutex
	stdin  io.WriteCloser
	exited chan struct{}
}

func (c *scaleClient) send(m scaleCmd) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enc.Encode(m)
}

// startScaleClient starts one client process with GOMAXPROCS=procs (0:
// unset); its events go to events (an "exit" event when it has ended).
func startScaleClient(spec scaleSpec, procs int, events chan<- scaleEvent) (*scaleClient, error) {
	var env []string
	if procs > 0 {
		env = []string{"GOMAXPROCS=" + strconv.Itoa(procs)}
	}
	cmd, stdin, stdout, err := fleet.StartSelf("__scale", env)
	if err != nil {
		return nil, err
	}
	c := &scaleClient{idx: spec.Index, Pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), exited: make(chan struct{})}
	if err := c.enc.Encode(spec); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("send spec to client: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var e scaleEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				events <- scaleEvent{Type: "fatal", Worker: spec.Index, Err: fmt.Sprintf("bad line: %v", err)}
				continue
			}
			e.Worker = spec.Index
			events <- e
		}
		err := cmd.Wait()
		close(c.exited)
		if err != nil {
			events <- scaleEvent{Type: "fatal", Worker: spec.Index, Err: fmt.Sprintf("client process %d: %v", c.Pid, err)}
		}
		events <- scaleEvent{Type: "exit", Worker: spec.Index}
	}()
	return c, nil
}

// readScaleStdin reads the spec line and then passes each command line on;
// the channel closes when stdin ends.
func readScaleStdin() (<-chan scaleCmd, scaleSpec, error) {
	in := bufio.NewReader(os.Stdin)
	var spec scaleSpec
	line, err := in.ReadBytes('\n')
	if err != nil {
		return nil, spec, fmt.Errorf("scale client: read spec: %w", err)
	}
	if err := json.Unmarshal(line, &spec); err != nil {
		return nil, spec, fmt.Errorf("scale client: bad spec: %w", err)
	}
	cmds := make(chan scaleCmd, 16)
	go func() {
		defer close(cmds)
		dec := json.NewDecoder(in)
		for {
			var c scaleCmd
			if err := dec.Decode(&c); err != nil {
				return
			}
			cmds <- c
		}
	}()
	return cmds, spec, nil
}

// newLineEmitter writes one JSON value per line, flushed at once.
func newLineEmitter(w io.Writer) func(any) {
	out := bufio.NewWriter(w)
	enc := json.NewEncoder(out)
	var mu sync.Mutex
	return func(v any) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(v)
		out.Flush()
	}
}

// scaleServer is one wsmill process of the reuseport group.
type scaleServer struct {
	idx     int
	cmd     *exec.Cmd
	Pid     int
	log     *os.File
	logPath string
	started chan struct{} // closed at its "wsmill started" line
	exited  chan struct{}
	err     error     // set before exited closes
	exitAt  time.Time // set before exited closes
}

// startLineWriter copies a server's output to its log file and closes
// started once the start line has gone by.
type startLineWriter struct {
	f       *os.File
	started chan struct{}
	seen    bool
	tail    []byte
}

func (w *startLineWriter) Write(p []byte) (int, error) {
	if !w.seen {
		w.tail = append(w.tail, p...)
		if strings.Contains(string(w.tail), "wsmill started") {
			w.seen = true
			w.tail = nil
			close(w.started)
		} else if len(w.tail) > 4096 {
			w.tail = w.tail[len(w.tail)-256:]
		}
	}
	return w.f.Write(p)
}

// startScaleServer starts wsmill with args and GOMAXPROCS=procs (0: unset).
func startScaleServer(idx int, bin string, args []string, procs int, logPath string) (*scaleServer, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	w := &startLineWriter{f: lf, started: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w, w
	if procs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start wsmill: %w", err)
	}
	s := &scaleServer{idx: idx, cmd: cmd, Pid: cmd.Process.Pid, log: lf, logPath: logPath, started: w.started, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		s.exitAt = time.Now()
		close(s.exited)
	}()
	return s, nil
}

// waitStarted waits for the start line, the process's end or the timeout.
func (s *scaleServer) waitStarted(ctx context.Context, timeout time.Duration) error {
	select {
	case <-s.started:
		return nil
	case <-s.exited:
		return fmt.Errorf("wsmill %d exited before its start line (%v): %s", s.idx, s.err, target.Tail(s.logPath, 400))
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("wsmill %d printed no start line within %v: %s", s.idx, timeout, target.Tail(s.logPath, 400))
	}
}

// stopServers sends SIGTERM to every server, waits up to grace, then
// kills what is left. It returns how long the last one took and the
// errors (a non-zero exit, a kill).
func stopServers(servers []*scaleServer, grace time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for _, s := range servers {
		s.cmd.Process.Signal(syscall.SIGTERM)
	}
	var errs []error
	var last time.Duration
	deadline := time.After(grace)
	for _, s := range servers {
		select {
		case <-s.exited:
		case <-deadline:
		}
		select {
		case <-s.exited:
			last = max(last, s.exitAt.Sub(t0))
			if s.err != nil {
				errs = append(errs, fmt.Errorf("wsmill %d: %v", s.idx, s.err))
			}
		default:
			s.cmd.Process.Kill()
			<-s.exited
			errs = append(errs, fmt.Errorf("wsmill %d did not exit within %v of SIGTERM: killed", s.idx, grace))
		}
		s.log.Close()
	}
	return last, errors.Join(errs...)
}
