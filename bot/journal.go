package bot

import (
	"context"
	"sync"
)

// Journal remembers which updates were handled so that an update redelivered
// (after a crash before its polling offset was confirmed, or a webhook retry)
// is not handled twice. The transport claims an update before handling it.
type Journal interface {
	// Claim records updateID and reports whether this was its first claim.
	Claim(ctx context.Context, updateID int64) (first bool, err error)
}

// MemoryJournal is a Journal of the most recent update IDs, held in memory:
// enough for tests and the console; across restarts, use a persistent one.
type MemoryJournal struct {
	mu       sync.Mutex
	capacity int
	seen     map[int64]struct{}
	// order holds the claimed IDs oldest first, as a ring of capacity entries.
	order []int64
	next  int
}

// NewMemoryJournal remembers the last capacity update IDs (at least 1).
func NewMemoryJournal(capacity int) *MemoryJournal {
	capacity = max(capacity, 1)
	return &MemoryJournal{capacity: capacity, seen: make(map[int64]struct{}, capacity)}
}

// Claim implements Journal; it never fails.
func (j *MemoryJournal) Claim(_ context.Context, updateID int64) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.seen[updateID]; ok {
		return false, nil
	}
	if len(j.order) < j.capacity {
		j.order = append(j.order, updateID)
	} else {
		delete(j.seen, j.order[j.next])
		j.order[j.next] = updateID
		j.next = (j.next + 1) % j.capacity
	}
	j.seen[updateID] = struct{}{}
	return true, nil
}
