// Package gcpace sets the garbage collector's target from the live heap.
//
// GOGC makes the headroom, how much the heap may grow between two
// collections, a fixed share of the live heap. A share small enough for a
// large heap (teleop's caches at 10,000 apps: about 60 MB, where 50 % keeps
// its peak RSS under 150 MiB) makes a small heap collect very often: at
// 1,000 apps, 12 MB live, every 6 MB allocated, which is a tenth of the CPU
// of a burst. A Policy keeps the share for large heaps and gives small ones
// a headroom of at least MinHeadroom, up to Go's default share of 100 %.
package gcpace

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// maxPercent is Go's default GOGC, the most a Policy sets.
const maxPercent = 100

// Policy is the GC target for a live heap.
type Policy struct {
	// Percent is the target (GOGC) of heaps large enough.
	Percent int
	// MinHeadroom is the least headroom, in bytes: below it the target
	// rises, up to 100.
	MinHeadroom uint64
}

// PercentFor returns the GC target for a live heap of live bytes.
func (p Policy) PercentFor(live uint64) int {
	if live == 0 {
		return maxPercent
	}
	wanted := (p.MinHeadroom*100 + live - 1) / live // rounded up
	return int(min(max(wanted, uint64(p.Percent)), maxPercent))
}

// Start sets the GC target now and after every collection until ctx ends.
func Start(ctx context.Context, p Policy) {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := -1
	apply := func() {
		metrics.Read(live)
		if percent := p.PercentFor(live[0].Value.Uint64()); percent != current {
			debug.SetGCPercent(percent)
			current = percent
		}
	}
	apply()
	afterEachGC(ctx, apply)
}

// sentinel is an object made garbage at once, whose cleanup tells that a
// collection ran. It is 16 bytes so as not to share a tiny block with other
// objects, which would delay its cleanup.
type sentinel [16]byte

// afterEachGC runs f after each collection, from the cleanup goroutine,
// until ctx ends.
func afterEachGC(ctx context.Context, f func()) {
	runtime.AddCleanup(new(sentinel), func(struct{}) {
		if ctx.Err() != nil {
			return
		}
		f()
		afterEachGC(ctx, f)
	}, struct{}{})
}
