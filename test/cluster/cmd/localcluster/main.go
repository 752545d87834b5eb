// Command localcluster runs the local control plane of package test/cluster
// until SIGINT or SIGTERM, for `make test` (one cluster shared by every
// package through TELEOP_TEST_KUBECONFIG) and `make dev`.
//
//	localcluster up --dir DIR
//
// It writes DIR/pid at once and DIR/kubeconfig (atomically, then prints the
// export KUBECONFIG line) only once the plane is usable with deploy/crds and,
// if present, deploy/rbac applied: a script waits for DIR/kubeconfig.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/teleop/teleop/test/cluster"
)

const usage = "usage: localcluster up --dir DIR"

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("localcluster failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "up" {
		return errors.New(usage)
	}
	flags := flag.NewFlagSet("localcluster up", flag.ContinueOnError)
	dir := flags.String("dir", "", "directory for the cluster's files (kubeconfig, pid, logs); required")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" || flags.NArg() > 0 {
		return errors.New(usage)
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("dir %s: %w", *dir, err)
	}
	return up(absDir)
}

func up(dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pidFile := filepath.Join(dir, "pid")
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if pid, alive := running(pidFile); alive {
		return fmt.Errorf("a local cluster already runs in %s (pid %d)", dir, pid)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	_ = os.Remove(kubeconfig)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(pidFile)

	c, err := cluster.Start(ctx, cluster.Options{Dir: dir})
	if err != nil {
		return err
	}
	defer c.Stop()
	slog.Info("control plane ready", "after", c.ReadyAfter, "dir", dir)

	if err := applyManifests(ctx, c); err != nil {
		return err
	}
	if err := publish(c.Kubeconfig, kubeconfig); err != nil {
		return err
	}
	defer os.Remove(kubeconfig)
	fmt.Printf("export KUBECONFIG=%s\n", kubeconfig)

	<-ctx.Done()
	slog.Info("stopping control plane")
	return nil
}

// applyManifests installs deploy/crds and deploy/rbac.
func applyManifests(ctx context.Context, c *cluster.Cluster) error {
	root := cluster.RepoRoot()
	if root == "" {
		return errors.New("run localcluster inside the teleop repository: deploy/crds is found from the working directory")
	}
	return cluster.InstallManifests(ctx, c.RESTConfig(), root)
}

// publish copies the admin kubeconfig to path by rename, so a reader never
// sees it half written.
func publish(from, path string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("publish kubeconfig: %w", err)
	}
	return nil
}

// running reports whether the pid file names a live process.
func running(pidFile string) (int, bool) {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	err = syscall.Kill(pid, 0)
	return pid, err == nil || errors.Is(err, syscall.EPERM)
}
