package benchkit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"

	"github.com/teleop/teleop/operator"
)

// LogCachesSynced is what the operator logs once its caches are synced and
// its workers run.
const LogCachesSynced = "operator controller started"

// stopTimeout bounds how long Stop waits for the operator to exit after SIGTERM.
const stopTimeout = 30 * time.Second

// RunOperator is the body of a test binary that StartOperator re-executed:
// teleop's operator with its default options, as `teleop run` without a
// token starts it, for namespace ("" = all) against kubeconfig, until SIGTERM
// or an interrupt. wrap, when not nil, wraps the operator's transport (to
// count its requests, say). The operator logs to stderr.
func RunOperator(kubeconfig, namespace string, wrap transport.WrapperFunc) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	opts := operator.Options{Namespace: namespace, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	clients, err := operator.NewClients(cfg, opts)
	if err != nil {
		return fmt.Errorf("build clients: %w", err)
	}
	op, err := operator.New(clients, opts)
	if err != nil {
		return fmt.Errorf("build operator: %w", err)
	}
	if err := op.Run(ctx); err != nil {
		return fmt.Errorf("operator stopped: %w", err)
	}
	return nil
}

// Operator is teleop's operator running as a child process of the test.
type Operator struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	exited  chan struct{}
	waitErr error
}

// StartOperator re-executes the test binary with env ("NAME=value") added to
// its environment and no tests selected, for a TestMain that sees env to call
// RunOperator. It returns at once; the process is killed when the test ends.
func StartOperator(tb testing.TB, env ...string) *Operator {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatalf("find the test binary: %v", err)
	}
	logFile, err := os.CreateTemp(tb.TempDir(), "operator-*.log")
	if err != nil {
		tb.Fatalf("operator log: %v", err)
	}
	defer logFile.Close()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &Operator{cmd: cmd, logPath: logFile.Name(), started: time.Now(), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start operator: %v", err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(p.Kill)
	return p
}

// Started is when the process was started.
func (p *Operator) Started() time.Time { return p.started }

// LogPath names the file holding the process's stdout and stderr.
func (p *Operator) LogPath() string { return p.logPath }

// WaitLog waits until the operator's log holds line and returns how long
// after the start of the process that was; it fails tb if the process exits
// first or timeout passes.
func (p *Operator) WaitLog(tb testing.TB, line string, timeout time.Duration) time.Duration {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !p.logContains(line) {
		select {
		case <-p.exited:
			tb.Fatalf("operator exited (%v) before logging %q; log:\n%s", p.waitErr, line, p.tail())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("operator did not log %q within %v; log:\n%s", line, timeout, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(p.started)
}

func (p *Operator) logContains(s string) bool {
	data, err := os.ReadFile(p.logPath)
	return err == nil && strings.Contains(string(data), s)
}

// tail is the last 30 lines of the log, for failure messages.
func (p *Operator) tail() string {
	data, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// Memory reads the process's memory and fails tb if it cannot.
func (p *Operator) Memory(tb testing.TB) Memory {
	tb.Helper()
	m, err := ReadMemory(p.cmd.Process.Pid)
	if err != nil {
		tb.Fatalf("operator memory: %v", err)
	}
	return m
}

// Kill ends the process with SIGKILL, as the OOM killer or a node failure
// would: no deferred cleanup, no flush.
func (p *Operator) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop ends the process with SIGTERM and fails tb unless it exits cleanly
// within 30 seconds.
func (p *Operator) Stop(tb testing.TB) {
	tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			tb.Errorf("operator exited with %v; log:\n%s", p.waitErr, p.tail())
		}
	case <-time.After(stopTimeout):
		tb.Errorf("operator did not stop within %v of SIGTERM", stopTimeout)
		p.Kill()
	}
}
