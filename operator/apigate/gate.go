// Package apigate holds a process's API requests while its API server is
// unreachable, and lets them go the moment it answers again.
//
// client-go's reflectors back off exponentially (up to 30 s plus as much
// jitter) on every failed list or watch, and the workqueues do the same per
// key, so after an outage of 20 s a process would sit idle for up to a
// minute more. Behind the Gate only the first request fails: it marks the
// server down, every later request waits, and one probe of /readyz at a
// fixed short interval decides when the server is back. So the backoffs
// never grow, a dead server sees one small request per interval, and
// everything waiting resumes within an interval of the server's return.
package apigate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Defaults of Options.
const (
	DefaultInterval     = 500 * time.Millisecond
	DefaultProbeTimeout = time.Second
)

// Options tune a Gate. The zero value takes the defaults.
type Options struct {
	// Interval is how often /readyz is asked while the server is down.
	Interval time.Duration
	// ProbeTimeout bounds one probe.
	ProbeTimeout time.Duration
	Logger       *slog.Logger
}

// Gate knows whether the API server is reachable; Wrap puts it in front of
// a client's transport.
type Gate struct {
	opts   Options
	probe  *http.Client
	readyz string

	mu      sync.Mutex
	down    bool
	since   time.Time
	cause   error
	back    chan struct{} // closed when the server answers again
	outages int
}

// New returns a Gate probing the API server of cfg (with cfg's credentials:
// cfg must not itself go through the Gate).
func New(cfg *rest.Config, opts Options) (*Gate, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = DefaultProbeTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	server, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server address: %w", err)
	}
	probe, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server probe client: %w", err)
	}
	probe.Timeout = opts.ProbeTimeout
	server.Path = "/readyz"
	return &Gate{opts: opts, probe: probe, readyz: server.String()}, nil
}

// Wrap returns rt behind the Gate; set it as rest.Config.WrapTransport.
func (g *Gate) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{g: g, next: rt}
}

// Healthy is nil while the API server is reachable and otherwise says since
// when and why not (for /readyz).
func (g *Gate) Healthy() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.down {
		return nil
	}
	return fmt.Errorf("API server unreachable for %s: %v", time.Since(g.since).Round(time.Second), g.cause)
}

// Outages counts how often the server was found down.
func (g *Gate) Outages() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.outages
}

type roundTripper struct {
	g    *Gate
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := rt.g.wait(req.Context()); err != nil {
		return nil, err
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil && req.Context().Err() == nil {
		rt.g.failed(err)
	}
	return resp, err
}

// wait returns once the server is reachable, or with ctx's error.
func (g *Gate) wait(ctx context.Context) error {
	g.mu.Lock()
	if !g.down {
		g.mu.Unlock()
		return nil
	}
	back, since, cause := g.back, g.since, g.cause
	g.mu.Unlock()
	select {
	case <-back:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waited for the API server, unreachable since %s (%v): %w", since.Format(time.TimeOnly), cause, ctx.Err())
	}
}

// failed marks the server down after a request could not reach it, and
// starts probing. A probe that passes at once (a single broken connection)
// lets everything through again after one round trip.
func (g *Gate) failed(cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		return
	}
	g.down, g.since, g.cause, g.back = true, time.Now(), cause, make(chan struct{})
	g.outages++
	g.opts.Logger.Warn("API server unreachable: holding API requests until /readyz answers", "err", cause)
	go g.probeUntilBack()
}

func (g *Gate) probeUntilBack() {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			time.Sleep(g.opts.Interval)
		}
		if err := g.ready(); err != nil {
			g.mu.Lock()
			g.cause = err
			g.mu.Unlock()
			continue
		}
		g.mu.Lock()
		g.down = false
		close(g.back)
		g.opts.Logger.Info("API server reachable again: releasing held API requests", "after", time.Since(g.since).Round(time.Millisecond))
		g.mu.Unlock()
		return
	}
}

// ready asks /readyz once.
func (g *Gate) ready() error {
	resp, err := g.probe.Get(g.readyz)
	if err != nil {
		return fmt.Errorf("probe /readyz: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe /readyz: %s", resp.Status)
	}
	return nil
}
