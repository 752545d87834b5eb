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
)

// envProfileSeconds is how long each CPU profile runs (20 s).
const envProfileSeconds = "TELEOP_BENCH_PROFILE_SECONDS"

// profiler takes teleop's profiles through its --pprof-addr when
// TELEOP_BENCH_PROFILES names a directory: a CPU and an allocation profile
// from the start of each phase and from the start of the restarted process, and
// the heap at the end of the run and of the restart, for `go tool pprof`.
type profiler struct {
	dir, run, addr string
	seconds        int
	wg             sync.WaitGroup
}

func newProfiler(b *testing.B, run string) *profiler {
	p := &profiler{dir: os.Getenv(envProfiles), run: run}
	if p.dir == "" {
		return p // addr "" turns teleop's pprof server off
	}
	p.seconds = positiveEnv(b, envProfileSeconds, 20)
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		b.Fatalf("profiles: %v", err)
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
	if p.addr == "" {
		return
	}
	p.wg.Go(func() { p.fetch(b, fmt.Sprintf("profile?seconds=%d", p.seconds), phase+"-cpu") })
	p.wg.Go(func() { p.fetch(b, fmt.Sprintf("allocs?seconds=%d", p.seconds), phase+"-allocs") })
}

// heap writes the live heap now.
func (p *profiler) heap(b *testing.B, when string) {
	if p.addr != "" {
		p.fetch(b, "heap?gc=1", when+"-heap")
	}
}

// wait lets the CPU profiles under way end: stopping teleop would cut
// them off.
func (p *profiler) wait() { p.wg.Wait() }

func (p *profiler) fetch(b *testing.B, query, name string) {
	// A CPU profile answers only after its seconds: the timeout leaves room
	// for them and for a loaded machine.
	client := &http.Client{Timeout: time.Duration(p.seconds)*time.Second + time.Minute}
	resp, err := p.get(client, query)
	if err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	defer resp.Body.Close()
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
func (p *profiler) get(client *http.Client, query string) (*http.Response, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get("http://" + p.addr + "/debug/pprof/" + query)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
