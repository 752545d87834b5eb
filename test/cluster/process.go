package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// defaultStopGrace is how long a component gets to exit after SIGTERM before
// it is killed.
const defaultStopGrace = 10 * time.Second

// A process is one control-plane component. Its children share its process
// group, so stopping signals the whole group.
type process struct {
	name    string
	path    string
	args    []string
	logPath string
	// stopGrace overrides defaultStopGrace when set.
	stopGrace time.Duration

	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error         // valid after exited is closed
}

// start runs the component with stdout and stderr appended to its log file.
// The child gets SIGKILL when this process dies, so a crashed or interrupted
// test never leaves a control plane behind.
func (p *process) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return nil
}

// running reports whether the component was started and has not exited.
func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the component's process group, then SIGKILL after its
// grace period. It is a no-op on a component that is not running.
func (p *process) stop() {
	if p.cmd == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	grace := p.stopGrace
	if grace == 0 {
		grace = defaultStopGrace
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	p.cmd = nil
}

// waitHealthy polls check until it succeeds, the component exits, or ctx
// ends. Failures carry the tail of the component's log.
func (p *process) waitHealthy(ctx context.Context, check func(context.Context) error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = check(attemptCtx)
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v) before it was healthy; last lines of %s:\n%s",
				p.name, p.waitErr, p.logPath, tail(p.logPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %w (last check: %v); last lines of %s:\n%s",
				p.name, ctx.Err(), lastErr, p.logPath, tail(p.logPath, 30))
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of a file, or a note why it cannot.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePorts reserves n distinct loopback ports by listening on them all at
// once, then releases them for the components to bind.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
