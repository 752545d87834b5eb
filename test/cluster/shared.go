package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// Environment variables tests honour.
const (
	// EnvKubeconfig names the admin kubeconfig of a cluster started once for
	// the whole test run (by `make test`); packages then share it.
	EnvKubeconfig = "TELEOP_TEST_KUBECONFIG"
	// EnvSkip set to 1 skips every test that needs the control plane.
	EnvSkip = "TELEOP_SKIP_CLUSTER"
	// EnvBinDir overrides BinDir.
	EnvBinDir = "TELEOP_CLUSTER_BIN_DIR"
)

const mainModule = "github.com/teleop/teleop"

var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
	warned  sync.Once
}

// Shared returns the cluster of this test process, with deploy/crds and
// deploy/rbac installed: the one named by TELEOP_TEST_KUBECONFIG if set, else
// one started on first use and stopped by Main (or killed with the process).
// It skips the test, loudly, only when TELEOP_SKIP_CLUSTER=1, and fails it
// when the cluster cannot start.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(EnvSkip) == "1" {
		const msg = "SKIPPED: this test needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set; it proves nothing in this run"
		shared.warned.Do(func() { fmt.Fprintln(os.Stderr, "!!! "+msg) })
		t.Skip(msg)
	}
	first := false
	shared.once.Do(func() {
		first = true
		shared.cluster, shared.err = startShared()
	})
	if shared.err != nil {
		t.Fatalf("local control plane: %v", shared.err)
	}
	if first && shared.cluster.ReadyAfter > 0 {
		t.Logf("local control plane started in %v (files and logs in %s)", shared.cluster.ReadyAfter, shared.cluster.Dir)
	}
	return shared.cluster
}

func startShared() (*Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout+time.Minute)
	defer cancel()
	root := RepoRoot()
	if root == "" {
		return nil, fmt.Errorf("no directory above the working directory holds the go.mod of %s", mainModule)
	}
	kubeconfig := os.Getenv(EnvKubeconfig)
	if kubeconfig != "" {
		// The run's cluster: localcluster installed deploy/crds and
		// deploy/rbac; applying the CRDs again waits until they are served.
		c, err := Attach(kubeconfig)
		if err != nil {
			return nil, err
		}
		if err := InstallCRDs(ctx, c.RESTConfig(), filepath.Join(root, "deploy", "crds")); err != nil {
			return nil, fmt.Errorf("install CRDs: %w", err)
		}
		return c, nil
	}
	c, err := Start(ctx, Options{})
	if err != nil {
		return nil, err
	}
	if err := InstallManifests(ctx, c.RESTConfig(), root); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// InstallManifests installs deploy/crds and, when present, deploy/rbac (the
// chat roles tests grant), as `make test`'s cluster has them.
func InstallManifests(ctx context.Context, cfg *rest.Config, root string) error {
	if err := InstallCRDs(ctx, cfg, filepath.Join(root, "deploy", "crds")); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	rbac := filepath.Join(root, "deploy", "rbac")
	if _, err := os.Stat(rbac); err != nil {
		return nil
	}
	if _, err := ApplyDir(ctx, cfg, rbac); err != nil {
		return fmt.Errorf("apply deploy/rbac: %w", err)
	}
	return nil
}

// Main runs the tests and then stops the cluster Shared started, if any. Use
// it as `func TestMain(m *testing.M) { cluster.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	os.Exit(code)
}

// BinDir is where hack/cluster/build.sh puts the control-plane binaries:
// $TELEOP_CLUSTER_BIN_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/teleop/bin.
func BinDir() string {
	if dir := os.Getenv(EnvBinDir); dir != "" {
		return dir
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "teleop", "bin")
}

// RepoRoot returns the directory holding the main module's go.mod, searched
// upwards from the working directory (a test's package directory), or "" when
// there is none.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if isMainModule(filepath.Join(dir, "go.mod")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// isMainModule reports whether the go.mod at path declares the main module
// (hack/cluster has a go.mod of its own).
func isMainModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if fields := strings.Fields(scanner.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == mainModule
		}
	}
	return false
}
