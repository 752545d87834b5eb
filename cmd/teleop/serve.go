package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// readiness collects the checks behind /readyz: informer caches synced,
// leadership held, the Telegram loop healthy. It fails as "starting" until
// start is called, so a probe that comes before the process has registered
// its checks cannot pass on the few registered so far.
type readiness struct {
	mu      sync.RWMutex
	started bool
	checks  map[string]func() error
}

func (r *readiness) add(name string, check func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checks == nil {
		r.checks = map[string]func() error{}
	}
	r.checks[name] = check
}

// start says every check of this phase is registered: as the leader (or the
// only instance) once it has added its own, as a follower once it waits for
// the lease.
func (r *readiness) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = true
}

// failing returns the names and errors of the checks that do not pass, sorted.
func (r *readiness) failing() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	if !r.started {
		out = append(out, "starting: checks not registered yet")
	}
	for name, check := range r.checks {
		if err := check(); err != nil {
			out = append(out, fmt.Sprintf("%s: %v", name, err))
		}
	}
	sort.Strings(out)
	return out
}

func (r *readiness) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if failing := r.failing(); len(failing) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, f := range failing {
				fmt.Fprintln(w, f)
			}
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// serveHTTP serves h on addr until ctx ends; an empty addr serves nothing.
func serveHTTP(ctx context.Context, log *slog.Logger, name, addr string, h http.Handler) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for %s on %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("serving", "what", name, "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "what", name, "err", err)
		}
	}()
	return nil
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// pprofHandler serves Go's runtime profiles, for `go tool pprof
// http://ADDR/debug/pprof/profile`. It is off unless --pprof-addr is set:
// profiles show internals no user needs.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// leaseName is the Lease teleop replicas compete for in --namespace.
const leaseName = "teleop-leader"

// runLeading runs lead until ctx ends — at once without leader election, or
// only while this process holds the Lease. Losing the Lease ends the process's
// work with an error, so the Deployment restarts it as a follower: two leaders
// never reconcile or poll Telegram at the same time. Under election,
// following is called once the process waits for the Lease.
func runLeading(ctx context.Context, cfg *config, client kubernetes.Interface, log *slog.Logger, following func(), lead func(context.Context) error) error {
	if !cfg.leaderElect {
		return lead(ctx)
	}
	identity, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("leader election identity: %w", err)
	}
	identity += "_" + rand.String(6)
	labeler := podLabeler{client: client, namespace: cfg.namespace, pod: os.Getenv("POD_NAME")}
	// A restarted container keeps its pod's labels: it is no leader yet.
	if err := labeler.mark(ctx, false); err != nil {
		log.Warn("could not clear the leader label", "err", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.namespace, Name: leaseName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	leadErr := make(chan error, 1)
	leCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   8 * time.Second, // a dead leader is replaced within about 11 s
		RenewDeadline:   6 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            leaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.Info("became the leader", "identity", identity)
				if err := labeler.mark(ctx, true); err != nil {
					log.Warn("could not set the leader label; webhook posts may miss this replica", "err", err)
				}
				leadErr <- lead(ctx)
				cancel()
			},
			OnStoppedLeading: func() {
				log.Info("stopped leading", "identity", identity)
				cancel()
			},
			OnNewLeader: func(current string) {
				if current != identity {
					log.Info("following", "leader", current)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	log.Info("waiting for leadership", "lease", cfg.namespace+"/"+leaseName, "identity", identity)
	following()
	elector.Run(leCtx)
	select {
	case err := <-leadErr:
		return err
	default:
	}
	if ctx.Err() == nil {
		return errors.New("lost leadership")
	}
	return nil
}

// leaderLabel marks the pod of the elected leader. The webhook Service selects
// it, so Telegram's posts reach the one replica that runs the bot.
const leaderLabel = "teleop.io/leader"

// podLabeler sets leaderLabel on teleop's own pod, named by the POD_NAME
// environment variable (the downward API); out of a cluster it does nothing.
type podLabeler struct {
	client    kubernetes.Interface
	namespace string
	pod       string
}

func (l podLabeler) mark(ctx context.Context, leader bool) error {
	if l.pod == "" {
		return nil
	}
	value := "null"
	if leader {
		value = `"true"`
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, leaderLabel, value)
	_, err := l.client.CoreV1().Pods(l.namespace).Patch(ctx, l.pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("label pod %s/%s leader=%v: %w", l.namespace, l.pod, leader, err)
	}
	return nil
}
