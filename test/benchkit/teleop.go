package benchkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/teleop/teleop/test/cluster"
)

var (
	buildOnce   sync.Once
	buildErr    error
	buildOutput []byte
)

// BuildTeleop builds bin/teleop from ./cmd/teleop, as `make build` does,
// once per test process, and returns its path.
func BuildTeleop(tb testing.TB) string {
	tb.Helper()
	binary := filepath.Join(cluster.RepoRoot(), "bin", "teleop")
	buildOnce.Do(func() {
		build := exec.Command("go", "build", "-o", binary, "./cmd/teleop")
		build.Dir = cluster.RepoRoot()
		buildOutput, buildErr = build.CombinedOutput()
	})
	if buildErr != nil {
		tb.Fatalf("build teleop: %v\n%s", buildErr, buildOutput)
	}
	return binary
}

// StartTeleop runs `binary run args...` (LaunchTeleop) and waits until its
// operator's caches are synced (with leader election: until it leads).
func StartTeleop(tb testing.TB, binary string, args ...string) *Process {
	tb.Helper()
	p := LaunchTeleop(tb, binary, args...)
	p.WaitLog(tb, LogCachesSynced, 2*time.Minute)
	return p
}

// LaunchTeleop runs `binary run args...` with no Kubernetes or Telegram
// settings from the environment, and returns at once.
func LaunchTeleop(tb testing.TB, binary string, args ...string) *Process {
	tb.Helper()
	cmd := exec.Command(binary, append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=", "TELEGRAM_BOT_TOKEN=", "TELEGRAM_BOT_TOKEN_FILE=")
	return StartProcess(tb, cmd)
}
