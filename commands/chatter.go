package commands

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// HintInterval is the least time between two "I understand commands" hints
// to one chat: a chat that talks to the bot as to a person gets one hint,
// not one per message, and its commands never queue behind the hints.
const HintInterval = time.Minute

// hintLimiter allows one hint per chat per HintInterval. It forgets a chat
// once its interval has passed, so it holds at most the chats hinted in the
// last interval.
type hintLimiter struct {
	clock clock.PassiveClock

	mu   sync.Mutex
	last map[int64]time.Time
}

func newHintLimiter(c clock.PassiveClock) *hintLimiter {
	if c == nil {
		c = clock.RealClock{}
	}
	return &hintLimiter{clock: c, last: map[int64]time.Time{}}
}

// allow reports whether chatID may get a hint now, and if so counts it.
func (h *hintLimiter) allow(chatID int64) bool {
	now := h.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if at, ok := h.last[chatID]; ok && now.Sub(at) < HintInterval {
		return false
	}
	for id, at := range h.last {
		if now.Sub(at) >= HintInterval {
			delete(h.last, id)
		}
	}
	h.last[chatID] = now
	return true
}
