// Package benchkit holds what teleop's benchmarks and resilience tests on the
// local control plane share: writing bursts with the operator's concurrency,
// timing conditions from watches, and running the operator as a child
// process of the test binary so that its memory is a process's own.
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
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range operator.DefaultWorkers {
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
