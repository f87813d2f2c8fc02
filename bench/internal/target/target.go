package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
)

// Spec says where one server under test comes from.
type Spec struct {
	Label string // its name in tables, files and the binary's name
	Peer  string // bench/peers/NAME to build; "" is the repository root
}

// FindRoot locates the wsmill root and the bench module directory: -root
// if given, otherwise the nearest directory (from the working directory
// upwards) that is the bench module or contains it.
func FindRoot(root string) (string, string, error) {
	if root != "" {
		bench := filepath.Join(root, "bench")
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			return "", "", fmt.Errorf("-root %s: %w", root, err)
		}
		return root, bench, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		if IsBenchModule(dir) {
			return filepath.Dir(dir), dir, nil
		}
		if IsBenchModule(filepath.Join(dir, "bench")) {
			return dir, filepath.Join(dir, "bench"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("cannot find the wsmill root (a directory with bench/go.mod) from here: use -root")
		}
		dir = parent
	}
}

// IsBenchModule reports whether dir holds the bench module's go.mod.
func IsBenchModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && bytes.Contains(b, []byte("module github.com/wsmill/wsmill/bench"))
}

// Build compiles one server into dir and returns the binary's path.
func Build(ctx context.Context, sp Spec, root, benchDir, dir string) (string, error) {
	bin := filepath.Join(dir, sp.Label)
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	what := sp.Label
	if sp.Peer == "" {
		cmd = exec.CommandContext(bctx, "go", "build", "-o", bin, ".")
		cmd.Dir = root
	} else {
		src := filepath.Join(benchDir, "peers", sp.Peer)
		if _, err := os.Stat(src); err != nil {
			return "", fmt.Errorf("server %q: no directory %s", sp.Label, src)
		}
		cmd = exec.CommandContext(bctx, "go", "build", "-o", bin, "./peers/"+sp.Peer)
		cmd.Dir = benchDir
		if sp.Peer == sp.Label && sp.Label == "wsmill" {
			what = "wsmill (bench/peers/wsmill)"
		}
	}
	fmt.Fprintf(cli.Stderr, "building %s...\n", what)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", sp.Label, err, out)
	}
	return bin, nil
}

// Proc is a server under test.
type Proc struct {
	Cmd    *exec.Cmd
	Addr   string
	Exited chan struct{} // closed when the process has exited
	Err    error         // its exit status, set before Exited is closed
	Log    *os.File
}

// Start runs bin on a fresh 127.0.0.1 port and waits until it accepts.
func Start(ctx context.Context, name, bin string, interval time.Duration, extra []string, logPath string) (*Proc, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-addr", addr, "-push-interval", interval.String()}
	args = append(args, extra...)
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &Proc{Cmd: cmd, Addr: addr, Exited: make(chan struct{}), Log: lf}
	go func() {
		s.Err = cmd.Wait()
		close(s.Exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			// Let the server drop the probe before the baseline is taken.
			time.Sleep(300 * time.Millisecond)
			return s, nil
		}
		select {
		case <-s.Exited:
			lf.Close()
			return nil, fmt.Errorf("%s exited before accepting (%v): %s", name, s.Err, Tail(logPath, 600))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%s does not accept on %s after 15 s", name, addr)
		}
	}
}

// Stop sends SIGTERM, and SIGKILL after 5 s.
func (s *Proc) Stop() error {
	defer s.Log.Close()
	s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.Exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	s.Cmd.Process.Kill()
	select {
	case <-s.Exited:
	case <-time.After(5 * time.Second):
	}
	return errors.New("did not exit within 5 s of SIGTERM: killed")
}

// FreePort asks the kernel for a free 127.0.0.1 port (free when asked: a
// server started on it soon after almost always gets it).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Tail returns the last n bytes of a file, for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
