package fleet

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// StartSelf starts this binary again as a client process: os.Args[1] is
// sub ("__worker", "__scale"), env is added to the environment, stderr is
// shared, and stdin and stdout are pipes for the JSON lines of commands and
// events. The child is in its own process group and dies with its parent
// (Pdeathsig), so a killed wsload leaves no client behind.
func StartSelf(sub string, env []string) (cmd *exec.Cmd, stdin io.WriteCloser, stdout io.ReadCloser, err error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd = exec.Command(exe, sub)
	cmd.Stderr = os.Stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if stdin, err = cmd.StdinPipe(); err != nil {
		return nil, nil, nil, err
	}
	if stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("start %s process: %w", sub, err)
	}
	return cmd, stdin, stdout, nil
}
