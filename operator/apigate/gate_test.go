package apigate

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

// server is an HTTP server that can go away and come back on its address,
// counting the requests it gets by path.
type server struct {
	t    *testing.T
	addr string
	srv  *http.Server
	hits sync.Map // path -> *atomic.Int64
}

func startServer(t *testing.T) *server {
	s := &server{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

func (s *server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := s.hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		_, _ = w.Write([]byte("ok"))
	})}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

func (s *server) stop() { _ = s.srv.Close() }

func (s *server) restart() {
	ln, err := net.Listen("tcp", s.addr)
	require.NoError(s.t, err)
	s.serve(ln)
}

func (s *server) count(path string) int64 {
	n, ok := s.hits.Load(path)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func TestGateHoldsRequestsWhileTheServerIsDownAndReleasesThemWhenItIsBack(t *testing.T) {
	s := startServer(t)
	cfg := &rest.Config{Host: "http://" + s.addr}
	const interval = 50 * time.Millisecond
	g, err := New(cfg, Options{Interval: interval, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	client := &http.Client{Transport: g.Wrap(http.DefaultTransport)}
	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/api", nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	require.NoError(t, get(context.Background()))
	require.NoError(t, g.Healthy())

	s.stop()
	require.Error(t, get(context.Background()), "the request that finds the server gone fails")
	require.ErrorContains(t, g.Healthy(), "API server unreachable")
	assert.Equal(t, 1, g.Outages())

	// Later requests wait, and give up with their context.
	short, cancel := context.WithTimeout(context.Background(), 3*interval)
	defer cancel()
	err = get(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "waited for the API server")

	held := make(chan error, 10)
	for range cap(held) {
		go func() { held <- get(context.Background()) }()
	}
	time.Sleep(10 * interval)
	select {
	case err := <-held:
		t.Fatalf("a request went through while the server was down: %v", err)
	default:
	}

	apiBefore := s.count("/api")
	s.restart()
	for range cap(held) {
		select {
		case err := <-held:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("held requests were not released after the server came back")
		}
	}
	require.NoError(t, g.Healthy())
	assert.Equal(t, apiBefore+int64(cap(held)), s.count("/api"), "each held request reached the server once")
	assert.Positive(t, s.count("/readyz"))
	assert.Equal(t, 1, g.Outages())
}

func TestGateProbesADeadServerAtItsIntervalOnly(t *testing.T) {
	s := startServer(t)
	const interval = 100 * time.Millisecond
	var probes atomic.Int64
	g, err := New(&rest.Config{Host: "http://" + s.addr}, Options{Interval: interval, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	counting := g.probe.Transport
	if counting == nil {
		counting = http.DefaultTransport
	}
	g.probe.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		probes.Add(1)
		return counting.RoundTrip(r)
	})
	s.stop()
	g.failed(errors.New("connection refused"))

	// Many callers wait; the dead server still sees one probe per interval.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _ = g.wait(ctx) })
	}
	wg.Wait()
	assert.InDelta(t, 2*time.Second/interval, probes.Load(), 5, "probes in 2 s")
	s.restart()
	require.Eventually(t, func() bool { return g.Healthy() == nil }, 5*time.Second, 10*time.Millisecond)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
