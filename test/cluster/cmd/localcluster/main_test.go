package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/cluster"
)

func TestRunRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no subcommand", args: nil, want: usage},
		{name: "unknown subcommand", args: []string{"down"}, want: usage},
		{name: "up without dir", args: []string{"up"}, want: usage},
		{name: "stray argument", args: []string{"up", "--dir", "x", "extra"}, want: usage},
		{name: "unknown flag", args: []string{"up", "--size", "3"}, want: "flag provided but not defined: -size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// readFile returns a file's content, or nothing when it cannot be read.
func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// waitForFile waits until path exists or the process exits; output names the
// process's log.
func waitForFile(t *testing.T, path string, exited <-chan struct{}, output string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("localcluster exited before writing %s:\n%s", path, readFile(output))
		case <-deadline:
			t.Fatalf("no %s after 2 minutes:\n%s", path, readFile(output))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestUpServesUntilSIGTERM(t *testing.T) {
	if os.Getenv(cluster.EnvSkip) == "1" {
		t.Skip("SKIPPED: needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	bin := filepath.Join(t.TempDir(), "localcluster")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	dir := t.TempDir()
	// A file, not a buffer: the test reads it while the process writes.
	output := filepath.Join(t.TempDir(), "localcluster.log")
	logFile, err := os.Create(output)
	require.NoError(t, err)
	defer logFile.Close()
	up := exec.Command(bin, "up", "--dir", dir)
	up.Stdout = logFile
	up.Stderr = logFile
	require.NoError(t, up.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = up.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = up.Process.Kill()
		<-exited
	})

	kubeconfig := filepath.Join(dir, "kubeconfig")
	waitForFile(t, kubeconfig, exited, output)
	pid, err := os.ReadFile(filepath.Join(dir, "pid"))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(up.Process.Pid)+"\n", string(pid))

	c, err := cluster.Attach(kubeconfig)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Kubectl(ctx, "get", "crd", "teleapps.teleop.io")
	require.NoError(t, err, "deploy/crds installed")
	_, err = c.Kubectl(ctx, "get", "clusterrole", "teleop-editor")
	require.NoError(t, err, "deploy/rbac applied")
	assert.Contains(t, readFile(output), "export KUBECONFIG="+kubeconfig)

	second := exec.Command(bin, "up", "--dir", dir)
	secondOut, err := second.CombinedOutput()
	require.Error(t, err, "a second cluster in the same dir is refused")
	assert.Contains(t, string(secondOut), "already runs")

	require.NoError(t, up.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("localcluster still running 30s after SIGTERM:\n%s", readFile(output))
	}
	require.NoError(t, waitErr, "clean exit on SIGTERM")
	assert.NoFileExists(t, kubeconfig)
	assert.NoFileExists(t, filepath.Join(dir, "pid"))
	_, err = c.Kubectl(ctx, "get", "--request-timeout=2s", "namespaces")
	assert.Error(t, err, "the API server is gone")
}
