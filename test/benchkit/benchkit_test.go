package benchkit

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/teleop/teleop/operator"
)

// fatalRecorder is a testing.TB whose Fatalf notes the message and ends the
// calling goroutine, as testing's does, so that failures can be asserted.
type fatalRecorder struct {
	testing.TB
	failure string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failureOf runs fn with a fatalRecorder and returns what it failed with.
func failureOf(t *testing.T, fn func(tb testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	return rec.failure
}

func TestBurstCallsEveryIndexOnceWithTheOperatorsWorkers(t *testing.T) {
	const n = 200
	var mu sync.Mutex
	calls := map[int]int{}
	var running, most atomic.Int32
	Burst(t, n, func(i int) error {
		now := running.Add(1)
		defer running.Add(-1)
		for old := most.Load(); now > old && !most.CompareAndSwap(old, now); old = most.Load() {
		}
		mu.Lock()
		defer mu.Unlock()
		calls[i]++
		return nil
	})
	assert.Len(t, calls, n)
	for i := range n {
		assert.Equal(t, 1, calls[i], "calls of %d", i)
	}
	assert.LessOrEqual(t, int(most.Load()), operator.DefaultWorkers)
}

func TestBurstFailsWithAnError(t *testing.T) {
	failure := failureOf(t, func(tb testing.TB) {
		Burst(tb, 10, func(i int) error {
			if i == 7 {
				return errors.New("conflict on 7")
			}
			return nil
		})
	})
	assert.Equal(t, "burst: conflict on 7", failure)
}
