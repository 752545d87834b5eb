package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/uninstall"
)

// uninstallConfig is what `teleop uninstall` is told.
type uninstallConfig struct {
	kubeconfig string
	namespace  string
	watchNS    string
	deployment string
	timeout    time.Duration
}

func newUninstallFlagSet(c *uninstallConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("uninstall", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster config when empty")
	fs.StringVar(&c.namespace, "namespace", "teleop-system", "namespace of teleop's Deployment")
	fs.StringVar(&c.watchNS, "watch-namespace", "", "release only the TeleApps of this namespace; all when empty")
	fs.StringVar(&c.deployment, "deployment", "teleop", "teleop's Deployment, scaled to 0 first so it cannot put finalizers back; empty skips it")
	fs.DurationVar(&c.timeout, "timeout", uninstall.DefaultTimeout, "how long to wait for teleop's pods to end")
	return fs
}

// parseUninstall parses args and fills unset flags from the environment.
func parseUninstall(args []string, getenv func(string) string) (*uninstallConfig, error) {
	c := &uninstallConfig{}
	fs := newUninstallFlagSet(c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	switch {
	case c.namespace == "" && c.deployment != "":
		return nil, fmt.Errorf("--namespace is empty; it names where --deployment %s runs", c.deployment)
	case c.timeout <= 0:
		return nil, fmt.Errorf("--timeout must be positive")
	}
	return c, nil
}

// runUninstall stops teleop and removes its finalizers from the TeleApps,
// saying what it did on out.
func runUninstall(ctx context.Context, c *uninstallConfig, out io.Writer) error {
	restCfg, err := restConfig(c.kubeconfig)
	if err != nil {
		return err
	}
	clients, err := operator.NewClients(restCfg, operator.Options{})
	if err != nil {
		return fmt.Errorf("kubernetes clients: %w", err)
	}
	return uninstall.Run(ctx, clients.Kube, clients.Tele, uninstall.Options{
		Namespace:      c.namespace,
		Deployment:     c.deployment,
		WatchNamespace: c.watchNS,
		Timeout:        c.timeout,
		Out:            out,
	})
}
