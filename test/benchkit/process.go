package benchkit

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopTimeout bounds how long Stop waits for a process to exit after SIGTERM.
const stopTimeout = 30 * time.Second

// Process is a program under measurement, run as a child of the test so
// that its memory and CPU time are a process's own in /proc.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	exited  chan struct{}
	waitErr error
}

// StartProcess starts cmd with its stdout and stderr in a log file of the
// test's temporary directory. It returns at once; the process is killed
// when the test ends.
func StartProcess(tb testing.TB, cmd *exec.Cmd) *Process {
	tb.Helper()
	logFile, err := os.CreateTemp(tb.TempDir(), "process-*.log")
	if err != nil {
		tb.Fatalf("process log: %v", err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &Process{cmd: cmd, logPath: logFile.Name(), started: time.Now(), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(p.Kill)
	return p
}

// Started is when the process was started.
func (p *Process) Started() time.Time { return p.started }

// LogPath names the file holding the process's stdout and stderr.
func (p *Process) LogPath() string { return p.logPath }

// WaitLog waits until the process's log holds line and returns how long
// after the start of the process that was; it fails tb if the process exits
// first or timeout passes.
func (p *Process) WaitLog(tb testing.TB, line string, timeout time.Duration) time.Duration {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !p.logContains(line) {
		select {
		case <-p.exited:
			tb.Fatalf("%s exited (%v) before logging %q; log:\n%s", p.cmd.Path, p.waitErr, line, p.Tail())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not log %q within %v; log:\n%s", p.cmd.Path, line, timeout, p.Tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(p.started)
}

func (p *Process) logContains(s string) bool {
	data, err := os.ReadFile(p.logPath)
	return err == nil && strings.Contains(string(data), s)
}

// Tail is the last 30 lines of the log, for failure messages.
func (p *Process) Tail() string {
	data, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// Memory reads the process's memory and fails tb if it cannot.
func (p *Process) Memory(tb testing.TB) Memory {
	tb.Helper()
	m, err := ReadMemory(p.cmd.Process.Pid)
	if err != nil {
		tb.Fatalf("memory of %s: %v", p.cmd.Path, err)
	}
	return m
}

// CPU reads the CPU time the process has used so far and fails tb if it
// cannot.
func (p *Process) CPU(tb testing.TB) time.Duration {
	tb.Helper()
	cpu, err := ReadCPU(p.cmd.Process.Pid)
	if err != nil {
		tb.Fatalf("CPU time of %s: %v", p.cmd.Path, err)
	}
	return cpu
}

// Kill ends the process with SIGKILL, as the OOM killer or a node failure
// would: no deferred cleanup, no flush.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop ends the process with SIGTERM and fails tb unless it exits cleanly
// within 30 seconds.
func (p *Process) Stop(tb testing.TB) {
	tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			tb.Errorf("%s exited with %v; log:\n%s", p.cmd.Path, p.waitErr, p.Tail())
		}
	case <-time.After(stopTimeout):
		tb.Errorf("%s did not stop within %v of SIGTERM", p.cmd.Path, stopTimeout)
		p.Kill()
	}
}
