package bot

import (
	"context"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// dispatcher hands accepted updates to a Handler: in order within a chat,
// every chat on its own (no chat waits for another), each update under a
// deadline. It records every step in the ledger first: an update is accepted
// (durably, before Telegram is told it may forget it), then started
// (durably, right before its handler runs), so a crash loses nothing
// accepted and runs nothing twice.
type dispatcher struct {
	ctx     context.Context
	handler Handler
	// admitter, when the handler is one, refuses updates before they are
	// accepted.
	admitter Admitter
	ledger   *ledger
	deadline time.Duration
	metrics  *Metrics
	log      *slog.Logger
	// room is signalled whenever an update leaves the pending window.
	room chan struct{}

	mu sync.Mutex
	// chats holds the chats with an update running, and their backlog.
	chats map[int64][]Update
	wg    sync.WaitGroup
}

func newDispatcher(ctx context.Context, h Handler, l *ledger, deadline time.Duration, m *Metrics, log *slog.Logger) *dispatcher {
	admitter, _ := h.(Admitter)
	d := &dispatcher{
		ctx: ctx, handler: h, admitter: admitter, ledger: l, deadline: deadline, metrics: m, log: log,
		room:  make(chan struct{}, 1),
		chats: make(map[int64][]Update),
	}
	d.queue(l.replay(), true)
	return d
}

// batch is what one delivery brought, in ID order: updates to handle, and
// the IDs of updates that are not for us, which only move the offset.
type batch struct {
	updates []Update
	ignored []int64
	// polled is the offset of the getUpdates call that brought the batch;
	// 0 for a webhook delivery.
	polled int64
}

// first returns the lowest ID in b, and false for an empty batch.
func (b batch) first() (int64, bool) {
	var heads []int64 // both lists are in ID order
	if len(b.updates) > 0 {
		heads = append(heads, b.updates[0].ID)
	}
	if len(b.ignored) > 0 {
		heads = append(heads, b.ignored[0])
	}
	if len(heads) == 0 {
		return 0, false
	}
	return slices.Min(heads), true
}

// accept records b as accepted and queues its updates. It returns once all
// of it is saved, so that the caller may confirm it to Telegram; the
// handlers run as soon as it is.
func (d *dispatcher) accept(ctx context.Context, b batch) error {
	if first, ok := b.first(); ok {
		d.ledger.restartFrom(first, b.polled)
	}
	before := d.ledger.current()
	passed := d.queue(b.updates, false)
	for _, id := range b.ignored {
		d.ledger.pass(id)
	}
	passed += len(b.ignored)
	// Waiting for the current version covers this batch, and also a repeat
	// whose first delivery is still being saved. A save this batch started
	// may have read the offset before the passes: one more version makes
	// the save waited for carry them.
	version := d.ledger.current()
	if version != before && passed > 0 {
		version = d.ledger.bump()
	}
	return d.ledger.wait(ctx, version)
}

// queue puts updates behind the earlier ones of their chat, starting a
// chat's runner when it has none, and passes over those the admitter
// refuses; it returns how many it passed over. Replayed updates are
// pending already, and were admitted.
func (d *dispatcher) queue(updates []Update, replayed bool) (passed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range updates {
		if !replayed && d.ledger.seen(u.ID) {
			d.log.Info("skipping an update accepted before", "update", u.ID, "chat", u.ChatID)
			continue
		}
		if !replayed && d.admitter != nil && !d.admitter.Admit(d.ctx, u) {
			d.metrics.updateReceived()
			d.ledger.pass(u.ID)
			passed++
			continue
		}
		backlog, running := d.chats[u.ChatID]
		if running {
			if !replayed {
				d.ledger.accept(u, false)
			}
			d.chats[u.ChatID] = d.trim(append(backlog, u))
			continue
		}
		var version uint64
		if replayed {
			version = d.ledger.start(u.ID)
		} else {
			version = d.ledger.accept(u, true)
		}
		d.chats[u.ChatID] = nil
		d.wg.Add(1)
		go d.run(u, version)
	}
	return passed
}

// trim keeps a chat's backlog within maxChatBacklog by dropping its oldest
// updates. Callers hold d.mu.
func (d *dispatcher) trim(backlog []Update) []Update {
	for len(backlog) > maxChatBacklog {
		d.ledger.start(backlog[0].ID)
		d.ledger.evicted(backlog[0], "a chat's backlog is full")
		backlog = backlog[1:]
	}
	return backlog
}

// run handles u once version is saved, then the chat's backlog in order.
func (d *dispatcher) run(u Update, version uint64) {
	defer d.wg.Done()
	for {
		if err := d.ledger.wait(d.ctx, version); err != nil {
			d.log.Warn("update not handled: its start could not be recorded", "update", u.ID, "chat", u.ChatID, "err", err)
			return
		}
		d.handle(u)
		d.mu.Lock()
		backlog := d.chats[u.ChatID]
		if len(backlog) == 0 || d.ctx.Err() != nil {
			// On shutdown the backlog stays pending in the checkpoint and
			// runs after the restart.
			delete(d.chats, u.ChatID)
			d.mu.Unlock()
			return
		}
		u, d.chats[u.ChatID] = backlog[0], backlog[1:]
		version = d.ledger.start(u.ID)
		d.mu.Unlock()
		d.signalRoom()
	}
}

func (d *dispatcher) signalRoom() {
	select {
	case d.room <- struct{}{}:
	default:
	}
}

// waitRoom returns once the pending window has room, or ctx ended.
func (d *dispatcher) waitRoom(ctx context.Context) error {
	for d.ledger.full() {
		select {
		case <-d.room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// handle runs the handler on u under the update deadline; a panicking
// handler is logged, not fatal.
func (d *dispatcher) handle(u Update) {
	ctx, cancel := context.WithTimeout(d.ctx, d.deadline)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("update handler panicked", "update", u.ID, "chat", u.ChatID, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	d.metrics.updateReceived()
	if d.admitter != nil {
		d.admitter.HandleAdmitted(ctx, u)
	} else {
		d.handler.HandleUpdate(ctx, u)
	}
	if ctx.Err() == context.DeadlineExceeded {
		d.log.Warn("update handler ran past its deadline", "update", u.ID, "chat", u.ChatID, "deadline", d.deadline)
	}
}

// wait returns once every running handler returned.
func (d *dispatcher) wait() { d.wg.Wait() }
