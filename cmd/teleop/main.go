// Command teleop is a Kubernetes operator driven from Telegram.
//
//	teleop run       the operator and the Telegram bot
//	teleop console   the same bot engine in a terminal, no Telegram needed
//	teleop uninstall removes teleop's finalizers, so no TeleApp is left stuck
//	teleop version   the build's version
//
// This package only wires: the work is done in operator/, bot/, commands/
// and conversations/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/teleop/teleop/internal/gcpace"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// gcPolicy is the Go GC's target unless GOGC says otherwise. teleop's heap
// is mostly its informer caches, which live as long as the process; Go's
// default (100) lets the heap grow to twice them between collections. Half
// that growth keeps the peak RSS at 10,000 apps under 150 MiB; a headroom
// of at least 12 MiB keeps a small heap (1,000 apps) from being collected
// every few megabytes, for a few more of RSS (docs/benchmarks.md, "Against
// Kopf").
var gcPolicy = gcpace.Policy{Percent: 50, MinHeadroom: 12 << 20}

const usage = `teleop: a Kubernetes operator driven from Telegram

Usage:
  teleop run [flags]       run the operator and the Telegram bot
  teleop console [flags]   chat with the bot engine in this terminal
  teleop uninstall [flags] stop teleop and remove its finalizers from every TeleApp
  teleop version           print the version

Run "teleop run --help" for the flags; every flag also has an environment variable.
`

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "teleop %s\n", version)
		return 0
	case "run", "console":
		if os.Getenv("GOGC") == "" {
			gcpace.Start(context.Background(), gcPolicy)
		}
		console := args[0] == "console"
		cfg, err := parseConfig(args[0], args[1:], console, os.Getenv)
		if errors.Is(err, flag.ErrHelp) {
			printFlags(stdout, newFlagSet(args[0], &config{}, console))
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "teleop %s: %v\n", args[0], err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		log, closeLog, err := newLogger(cfg, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "teleop %s: %v\n", args[0], err)
			return 1
		}
		defer closeLog()
		slog.SetDefault(log)    // packages that log through slog's default use the same format
		klog.SetSlogLogger(log) // and so does client-go
		if console {
			err = runConsole(ctx, cfg, stdin, stdout, log)
		} else {
			err = runTeleop(ctx, cfg, log)
		}
		if err != nil {
			fmt.Fprintf(stderr, "teleop %s: %v\n", args[0], err)
			return 1
		}
		return 0
	case "uninstall":
		cfg, err := parseUninstall(args[1:], os.Getenv)
		if errors.Is(err, flag.ErrHelp) {
			printFlags(stdout, newUninstallFlagSet(&uninstallConfig{}))
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "teleop uninstall: %v\n", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := runUninstall(ctx, cfg, stdout); err != nil {
			fmt.Fprintf(stderr, "teleop uninstall: %v\n", err)
			return 1
		}
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "teleop: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func printFlags(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: teleop %s [flags]\n\nFlags (environment variable in brackets; a flag wins over its variable):\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  --%s (%s)\n    \t%s (default %q)\n", f.Name, envFor[f.Name], f.Usage, f.DefValue)
	})
}

// newLogger logs to --log-file when set, else to w, and returns what closes
// the file.
func newLogger(cfg *config, w io.Writer) (*slog.Logger, func(), error) {
	closeLog := func() {}
	if cfg.logFile != "" {
		f, err := os.OpenFile(cfg.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open --log-file: %w", err)
		}
		w, closeLog = f, func() { _ = f.Close() }
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.logLevel)) // checked by validate
	opts := &slog.HandlerOptions{Level: level}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), closeLog, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closeLog, nil
}
