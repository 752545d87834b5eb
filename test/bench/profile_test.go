package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/teleop/teleop/test/cluster"
)

// envProfileSeconds is how long each CPU profile runs (20 s).
const envProfileSeconds = "TELEOP_BENCH_PROFILE_SECONDS"

// profiler takes teleop's profiles through its --pprof-addr when
// TELEOP_BENCH_PROFILES names a directory: a CPU and an allocation profile
// from the start of each phase and from the start of the restarted process, and
// the heap at the end of the run and of the restart, for `go tool pprof`.
// With a cluster started with profiling on (startCluster, when
// TELEOP_BENCH_PROFILES is set), it also takes kube-apiserver's CPU profile
// of each phase: the floor's runs have only that one.
type profiler struct {
	dir, run string
	addr     string       // teleop's --pprof-addr; "" for a run without teleop
	admin    *rest.Config // kube-apiserver's; nil when its profiles are not taken
	seconds  int
	wg       sync.WaitGroup
}

// newAPIServerProfiler takes only kube-apiserver's profiles, of c.
func newAPIServerProfiler(b *testing.B, run string, c *cluster.Cluster) *profiler {
	p := &profiler{dir: os.Getenv(envProfiles), run: run}
	if p.dir == "" {
		return p
	}
	p.seconds = positiveEnv(b, envProfileSeconds, 20)
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		b.Fatalf("profiles: %v", err)
	}
	if c != nil {
		p.admin = c.RESTConfig()
	}
	return p
}

// newProfiler takes teleop's profiles, and kube-apiserver's when c is not
// nil.
func newProfiler(b *testing.B, run string, c *cluster.Cluster) *profiler {
	p := newAPIServerProfiler(b, run, c)
	if p.dir == "" {
		return p // addr "" turns teleop's pprof server off
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("find a free port for pprof: %v", err)
	}
	p.addr = l.Addr().String()
	l.Close()
	return p
}

// cpu starts a CPU profile of the phase in the background, and a profile
// of what the phase allocates over the same seconds: the garbage collector's
// share of the CPU follows the allocations.
func (p *profiler) cpu(b *testing.B, phase string) {
	cpu := fmt.Sprintf("profile?seconds=%d", p.seconds)
	if p.addr != "" {
		p.wg.Go(func() { p.fetchTeleop(b, cpu, phase+"-cpu") })
		p.wg.Go(func() { p.fetchTeleop(b, fmt.Sprintf("allocs?seconds=%d", p.seconds), phase+"-allocs") })
	}
	if p.admin != nil {
		p.wg.Go(func() { p.fetchAPIServer(b, cpu, phase+"-apiserver-cpu") })
	}
}

// heap writes teleop's live heap now.
func (p *profiler) heap(b *testing.B, when string) {
	if p.addr != "" {
		p.fetchTeleop(b, "heap?gc=1", when+"-heap")
	}
}

// wait lets the CPU profiles under way end: stopping teleop would cut
// them off.
func (p *profiler) wait() { p.wg.Wait() }

func (p *profiler) fetchTeleop(b *testing.B, query, name string) {
	p.fetch(b, &http.Client{}, "http://"+p.addr, query, name)
}

func (p *profiler) fetchAPIServer(b *testing.B, query, name string) {
	client, err := rest.HTTPClientFor(p.admin)
	if err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	p.fetch(b, client, p.admin.Host, query, name)
}

func (p *profiler) fetch(b *testing.B, client *http.Client, server, query, name string) {
	// A CPU profile answers only after its seconds: the timeout leaves room
	// for them and for a loaded machine.
	client.Timeout = time.Duration(p.seconds)*time.Second + time.Minute
	resp, err := p.get(client, server+"/debug/pprof/"+query)
	if err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Logf("profile %s: %s", name, resp.Status)
		return
	}
	path := filepath.Join(p.dir, p.run+"-"+name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Logf("profile %s: %v", name, err)
	}
}

// get retries for a while when teleop is not listening yet: a profile from
// a process's start is asked for before its pprof server is up.
func (p *profiler) get(client *http.Client, url string) (*http.Response, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get(url)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
