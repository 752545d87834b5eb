package resilience

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/teleop/teleop/operator"
)

// logCachesSynced is what the operator logs once its caches are synced and
// its workers run.
const logCachesSynced = "operator controller started"

// runOperator is the child process: teleop's operator with its defaults, as
// `teleop run` without a token starts it, until SIGTERM.
func runOperator(kubeconfig, namespace string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		log.Error("load kubeconfig", "err", err)
		return 1
	}
	opts := operator.Options{Namespace: namespace, Logger: log}
	clients, err := operator.NewClients(cfg, opts)
	if err != nil {
		log.Error("build clients", "err", err)
		return 1
	}
	op, err := operator.New(clients, opts)
	if err != nil {
		log.Error("build operator", "err", err)
		return 1
	}
	if err := op.Run(ctx); err != nil {
		log.Error("operator stopped", "err", err)
		return 1
	}
	return 0
}

// operatorProcess is the operator running as a child process of the test.
type operatorProcess struct {
	cmd     *exec.Cmd
	log     string
	started time.Time
	exited  chan struct{}
	waitErr error
}

// startOperator re-executes the test binary as an operator for namespace
// ("" = all) and returns at once; the process is killed when the test ends.
func startOperator(t testing.TB, kubeconfig, namespace string) *operatorProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	logFile, err := os.CreateTemp(t.TempDir(), "operator-*.log")
	if err != nil {
		t.Fatalf("operator log: %v", err)
	}
	defer logFile.Close()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), envOperatorKubeconfig+"="+kubeconfig, envOperatorNamespace+"="+namespace)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &operatorProcess{cmd: cmd, log: logFile.Name(), started: time.Now(), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start operator: %v", err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

// waitLog waits until the operator's log holds line and returns how long
// after the start of the process that was.
func (p *operatorProcess) waitLog(t testing.TB, line string, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !p.logContains(line) {
		select {
		case <-p.exited:
			t.Fatalf("operator exited (%v) before logging %q; log:\n%s", p.waitErr, line, p.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("operator did not log %q within %v; log:\n%s", line, timeout, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(p.started)
}

func (p *operatorProcess) logContains(s string) bool {
	data, err := os.ReadFile(p.log)
	return err == nil && strings.Contains(string(data), s)
}

// countLog counts the log lines holding s.
func (p *operatorProcess) countLog(s string) int {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), s)
}

func (p *operatorProcess) tail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// kill ends the process with SIGKILL, as the OOM killer or a node failure
// would: no deferred cleanup, no flush.
func (p *operatorProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop ends the process with SIGTERM and fails the test unless it exits cleanly.
func (p *operatorProcess) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("operator exited with %v; log:\n%s", p.waitErr, p.tail())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("operator did not stop within 30s of SIGTERM")
		p.kill()
	}
}

// memory is what the kernel reports for a process.
type memory struct {
	peakRSS, rss int64 // bytes
}

// readMemory reads VmHWM (peak resident set) and VmRSS from /proc.
func (p *operatorProcess) memory() (memory, error) {
	path := filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "status")
	f, err := os.Open(path)
	if err != nil {
		return memory{}, fmt.Errorf("read process status: %w", err)
	}
	defer f.Close()
	var m memory
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("parse %q of %s: %w", scanner.Text(), path, err)
		}
		switch fields[0] {
		case "VmHWM:":
			m.peakRSS = kb << 10
		case "VmRSS:":
			m.rss = kb << 10
		}
	}
	return m, scanner.Err()
}
