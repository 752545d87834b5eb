// Package benchkit holds what teleop's benchmarks and resilience tests on the
// local control plane share: writing bursts with the operator's concurrency,
// timing conditions from watches, counting writes, and running teleop (or
// another operator) as a child process of the test so that its memory and
// CPU time are a process's own.
package benchkit

import (
	"sync"
	"testing"

	"github.com/teleop/teleop/operator"
)

// Burst calls fn for 0..n-1 from operator.DefaultWorkers goroutines, the
// concurrency teleop reconciles with, and fails tb with the first error.
func Burst(tb testing.TB, n int, fn func(i int) error) {
	tb.Helper()
	BurstWith(tb, operator.DefaultWorkers, n, fn)
}

// BurstWith is Burst with writers goroutines.
func BurstWith(tb testing.TB, writers, n int, fn func(i int) error) {
	tb.Helper()
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := range work {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("burst: %v", err)
	}
}
