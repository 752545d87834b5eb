package bot

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is the one retry policy of the transport (polling, webhook
// registration, the outbox, the checkpoint): exponential with jitter, each
// wait drawn from [d/2, d] where d doubles from min up to max. bot/ does not
// import Kubernetes, so this stands in for apimachinery's wait.Backoff.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func newBackoff(minWait, maxWait time.Duration) backoff {
	return backoff{min: minWait, max: maxWait}
}

// next returns the wait before the next attempt and counts the attempt.
func (b *backoff) next() time.Duration {
	d := b.min << min(b.attempt, 20)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.attempt++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
