package gcpace

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercentFor(t *testing.T) {
	policy := Policy{Percent: 50, MinHeadroom: 16 * mib}
	tests := []struct {
		name string
		live uint64
		want int
	}{
		{name: "no heap measured yet", live: 0, want: 100},
		{name: "a tiny heap gets Go's default, no more", live: 4 * mib, want: 100},
		{name: "16 MiB live: 16 MiB of headroom is 100 %", live: 16 * mib, want: 100},
		{name: "20 MiB live: 16 MiB is 80 %", live: 20 * mib, want: 80},
		{name: "32 MiB live: 16 MiB is the policy's 50 %", live: 32 * mib, want: 50},
		{name: "a large heap keeps the policy's share", live: 60 * mib, want: 50},
		{name: "rounded up, so the headroom is never short", live: 30 * mib, want: 54},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.PercentFor(tt.live); got != tt.want {
				t.Errorf("PercentFor(%d MiB) = %d, want %d", tt.live/mib, got, tt.want)
			}
		})
	}
}

// TestStartFollowsTheLiveHeap checks the target set at the start, and
// again after the collections that follow a change of the live heap.
func TestStartFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime.GC() // a live heap measured: a few MiB in a test

	Start(ctx, Policy{Percent: 50, MinHeadroom: 8 * mib})
	if got := gcPercent(); got != 100 {
		t.Fatalf("GC target of a small heap = %d, want 100", got)
	}
	func() {
		cache := make([]byte, 64*mib) // a large live heap: 8 MiB is under 50 % of it
		waitPercent(t, 50)
		runtime.KeepAlive(cache)
	}()
	waitPercent(t, 100) // the cache is garbage again
}

// waitPercent collects until the GC target is want.
func waitPercent(t *testing.T, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); gcPercent() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("GC target = %d, want %d", gcPercent(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}
