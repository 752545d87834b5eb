package benchkit

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// StartInformers starts factory until the test ends and waits for the
// informers' first lists, so that they are not part of any timing. Call it
// once per factory, with all its informers.
func StartInformers[F interface {
	Start(<-chan struct{})
	Shutdown()
}](tb testing.TB, factory F, informers ...cache.SharedIndexInformer) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	synced := make([]cache.InformerSynced, len(informers))
	for i, informer := range informers {
		synced[i] = informer.HasSynced
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		tb.Fatal("informer did not sync")
	}
}

// Counter notes the moment the number of objects for which a predicate
// holds first reaches a target. It learns of changes from an informer, so
// measuring costs the API server nothing beyond one watch per kind.
type Counter struct {
	mu        sync.Mutex
	want      int
	count     int
	ok        map[string]bool
	reachedAt time.Time
	done      chan struct{}
	remove    func()
}

// Count counts the informer's objects of type T for which ok holds, from
// now on, until Wait returns; the count reaches want at most once.
func Count[T metav1.Object](tb testing.TB, informer cache.SharedIndexInformer, want int, ok func(T) bool) *Counter {
	tb.Helper()
	c := &Counter{want: want, ok: map[string]bool{}, done: make(chan struct{})}
	observe := func(obj any, deleted bool) {
		if tombstone, isTombstone := obj.(cache.DeletedFinalStateUnknown); isTombstone {
			obj = tombstone.Obj
		}
		if o, isT := obj.(T); isT {
			c.observe(o.GetName(), !deleted && ok(o))
		}
	}
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { observe(obj, false) },
		UpdateFunc: func(_, obj any) { observe(obj, false) },
		DeleteFunc: func(obj any) { observe(obj, true) },
	})
	if err != nil {
		tb.Fatalf("watch: %v", err)
	}
	c.remove = func() { _ = informer.RemoveEventHandler(reg) }
	return c
}

func (c *Counter) observe(name string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ok && !c.ok[name]:
		c.count++
	case !ok && c.ok[name]:
		c.count--
	}
	c.ok[name] = ok
	if c.count >= c.want && c.reachedAt.IsZero() {
		c.reachedAt = time.Now()
		close(c.done)
	}
}

// Wait returns how long after start the count reached want, and fails tb
// if it does not within timeout. It stops the counting.
func (c *Counter) Wait(tb testing.TB, what string, start time.Time, timeout time.Duration) time.Duration {
	tb.Helper()
	defer c.remove()
	select {
	case <-c.done:
		return c.reachedAt.Sub(start)
	case <-time.After(timeout):
		c.mu.Lock()
		defer c.mu.Unlock()
		tb.Fatalf("%s: only %d of %d after %v", what, c.count, c.want, timeout)
		return 0
	}
}
