package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Checkpoint keeps the transport's record of updates durably: one small
// value, read when Run starts and replaced as updates are accepted and
// started. Save must be fenced: it fails, changing nothing, when the value
// was saved by anyone else since this Checkpoint's last Load or Save
// (optimistic concurrency, as a ConfigMap's resourceVersion gives).
type Checkpoint interface {
	// Load returns the saved value, nil when none was saved yet.
	Load(ctx context.Context) ([]byte, error)
	// Save replaces the value unless someone else saved one meanwhile.
	Save(ctx context.Context, data []byte) error
}

// ErrDeposed means another teleop instance took over the checkpoint: this
// one must stop receiving updates.
var ErrDeposed = errors.New("another instance took over the update checkpoint")

// MemoryCheckpoint is a Checkpoint held in memory: for tests and the
// console; across restarts, use a persistent one.
type MemoryCheckpoint struct {
	mu   sync.Mutex
	data []byte
}

// Load implements Checkpoint.
func (c *MemoryCheckpoint) Load(context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data, nil
}

// Save implements Checkpoint; one process has no one to be fenced from.
func (c *MemoryCheckpoint) Save(_ context.Context, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data = data
	return nil
}

// The bounds of the accepted-but-not-started window. Polling pauses while
// the window is full; one chat's backlog beyond maxChatBacklog loses its
// oldest updates, so a flood in one chat cannot stall the others.
const (
	maxPending      = 1000
	maxPendingBytes = 512 << 10
	maxChatBacklog  = 100
)

// checkpointState is what the ledger saves: the offset (every update below
// it was accepted: it was started, or it waits in Pending) and the window of
// updates accepted and not yet started. Writer and Seq identify the save, so
// that a failed Save can tell "my write landed after all" from "someone else
// took over".
type checkpointState struct {
	Writer string `json:"writer"`
	Seq    uint64 `json:"seq"`
	Offset int64  `json:"offset"`
	// Advanced is when Offset last moved: see restartFrom.
	Advanced time.Time `json:"advanced,omitzero"`
	Pending  []Update  `json:"pending,omitempty"`
}

// stamp identifies one save.
type stamp struct {
	writer string
	seq    uint64
}

func (st checkpointState) stamp() stamp { return stamp{st.Writer, st.Seq} }

// ledger is the durable record of updates: an update is accepted (saved in
// the pending window, and Telegram may then forget it), started (taken out of
// the window before its handler runs) and never run again. Saves are group
// commits: at most one is in flight, and every change made meanwhile goes
// into the next, so a burst of updates costs a few writes, not one each.
type ledger struct {
	// ctx is Run's: saves stop when it ends.
	ctx     context.Context
	cp      Checkpoint
	writer  string
	metrics *Metrics
	log     *slog.Logger

	// now is the ledger's clock: time.Now, but for tests.
	now func() time.Time

	mu       sync.Mutex
	offset   int64
	advanced time.Time
	pending  map[int64]Update
	bytes    int
	// version counts changes; saved is the last version durably saved.
	version, saved, seq uint64
	// last is the stamp of the state in the checkpoint as this ledger knows it.
	last           stamp
	saving         bool
	savedCh        chan struct{}
	fatal          error
	evictionLogged bool
}

// openLedger loads the saved state of cp; it saves until ctx ends.
func openLedger(ctx context.Context, cp Checkpoint, m *Metrics, log *slog.Logger) (*ledger, error) {
	raw, err := cp.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load the update checkpoint: %w", err)
	}
	var st checkpointState
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("decode the update checkpoint: %w", err)
		}
	}
	l := &ledger{
		ctx: ctx, cp: cp, writer: newWriterID(), metrics: m, log: log, now: time.Now,
		offset: st.Offset, advanced: st.Advanced, pending: make(map[int64]Update, len(st.Pending)),
		seq: st.Seq, last: st.stamp(), savedCh: make(chan struct{}),
	}
	if l.advanced.IsZero() {
		// Saved before teleop kept the time: count from now, so that no
		// redelivery passes for a restart of the ids.
		l.advanced = l.now()
	}
	for _, u := range st.Pending {
		l.add(u)
	}
	return l, nil
}

func newWriterID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// replay returns the updates accepted before and not started, oldest first.
func (l *ledger) replay() []Update {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sortedPending()
}

func (l *ledger) sortedPending() []Update {
	out := make([]Update, 0, len(l.pending))
	for _, u := range l.pending {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Update) int { return int(a.ID - b.ID) })
	return out
}

// nextOffset is the offset that confirms every accepted update.
func (l *ledger) nextOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offset
}

// seen reports whether id was accepted before: updates arrive in order, so
// anything below the offset was.
func (l *ledger) seen(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return id < l.offset
}

// accept records u as accepted: started at once, or pending. It returns the
// version to wait for before acting on it.
func (l *ledger) accept(u Update, started bool) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(u.ID)
	if !started {
		l.add(u)
	}
	l.version++
	return l.version
}

// current is the version of the state as it is now.
func (l *ledger) current() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version
}

// pass moves the offset past an update that will not run (not for us, or
// refused up front). It needs no save of its own: the next save carries
// it, and until then a crash makes Telegram deliver it again, or not at all
// once confirmed, both of which are fine for an update that does not run.
func (l *ledger) pass(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(id)
}

// bump makes a new version of the state as it is, so that a save waited
// for carries what changed without a version of its own (pass).
func (l *ledger) bump() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.version++
	return l.version
}

// advance moves the offset past id. Callers hold l.mu.
func (l *ledger) advance(id int64) {
	if id >= l.offset {
		l.offset, l.advanced = id+1, l.now()
	}
}

// redeliveryHorizon is how long Telegram keeps an update it could deliver
// again: at most 24 hours.
const redeliveryHorizon = 24 * time.Hour

// restartFrom starts the offset over at id when Telegram restarted its
// update ids. After a week without updates Telegram picks the next id at
// random, so it may be below the offset, and the bot would skip every
// update from then on. An id below the offset is such a restart when a
// poll for the offset brought it (polled is that offset; Telegram returns
// nothing it was told to forget), or, for a webhook delivery (polled 0),
// when the offset last moved longer ago than Telegram keeps an update to
// deliver again.
func (l *ledger) restartFrom(id, polled int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id >= l.offset {
		return
	}
	if polled == 0 && l.now().Sub(l.advanced) < redeliveryHorizon {
		return
	}
	l.log.Warn("Telegram restarted its update ids (it does after a week without updates): counting from the new one",
		"offset", l.offset, "update", id, "last_update_at", l.advanced)
	l.offset, l.advanced = id, l.now()
	l.version++
}

// start takes id out of the pending window (it is about to run, or was
// evicted) and returns the version to wait for before running it.
func (l *ledger) start(id int64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u, ok := l.pending[id]; ok {
		delete(l.pending, id)
		l.bytes -= updateSize(u)
		l.metrics.pendingAdd(-1)
	}
	l.version++
	return l.version
}

// evicted counts and logs (once) an update dropped to keep a bound.
func (l *ledger) evicted(u Update, why string) {
	l.metrics.updateDropped()
	l.mu.Lock()
	first := !l.evictionLogged
	l.evictionLogged = true
	l.mu.Unlock()
	if first {
		l.log.Warn("dropping updates to stay within a bound (logged once; see teleop_telegram_updates_dropped_total)",
			"why", why, "update", u.ID, "chat", u.ChatID)
	}
}

func (l *ledger) add(u Update) {
	l.pending[u.ID] = u
	l.bytes += updateSize(u)
	l.metrics.pendingAdd(1)
}

// full reports whether the pending window is at its bound.
func (l *ledger) full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending) >= maxPending || l.bytes >= maxPendingBytes
}

// updateSize approximates an update's share of the saved state.
func updateSize(u Update) int { return 160 + len(u.Text) + len(u.Username) }

// wait returns once version v is saved, ctx ended or the ledger was deposed.
func (l *ledger) wait(ctx context.Context, v uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.saved < v {
		if l.fatal != nil {
			return l.fatal
		}
		if err := l.ctx.Err(); err != nil {
			return err
		}
		if !l.saving {
			l.saving = true
			go l.saveLoop()
		}
		ch := l.savedCh
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			return ctx.Err()
		}
		l.mu.Lock()
	}
	return nil
}

// saveLoop saves until the saved state is current, retrying failures with
// back-off. It runs detached from any one caller: a save that some update
// waits for finishes even if the caller that started it went away.
func (l *ledger) saveLoop() {
	retry := newBackoff(100*time.Millisecond, 10*time.Second)
	for {
		l.mu.Lock()
		if l.saved >= l.version || l.fatal != nil || l.ctx.Err() != nil {
			l.saving = false
			close(l.savedCh) // waiters look again, and see why
			l.savedCh = make(chan struct{})
			l.mu.Unlock()
			return
		}
		version := l.version
		l.seq++
		st := checkpointState{Writer: l.writer, Seq: l.seq, Offset: l.offset, Advanced: l.advanced, Pending: l.sortedPending()}
		l.mu.Unlock()

		err := l.save(st)
		l.mu.Lock()
		switch {
		case err == nil:
			l.saved, l.last = version, st.stamp()
			retry.reset()
		case errors.Is(err, ErrDeposed):
			l.fatal = err
		}
		close(l.savedCh)
		l.savedCh = make(chan struct{})
		l.mu.Unlock()
		if err != nil && !errors.Is(err, ErrDeposed) {
			wait := retry.next()
			l.log.Warn("could not save the update checkpoint; retrying", "retry_in", wait, "err", err)
			sleep(l.ctx, wait)
		}
	}
}

// saveTimeout bounds one Save or Load of the checkpoint.
const saveTimeout = 10 * time.Second

// save writes st. When Save fails it reads the checkpoint back: its own
// write may have landed (then all is well), or another writer's (deposed).
func (l *ledger) save(st checkpointState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode the update checkpoint: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	saveErr := l.cp.Save(ctx, data)
	l.metrics.checkpointSaved(saveErr == nil)
	if saveErr == nil {
		return nil
	}
	raw, err := l.cp.Load(ctx)
	if err != nil {
		return fmt.Errorf("save the update checkpoint: %w (reading it back: %w)", saveErr, err)
	}
	var found checkpointState
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &found); err != nil {
			return fmt.Errorf("save the update checkpoint: %w (reading it back: %w)", saveErr, err)
		}
	}
	switch found.stamp() {
	case st.stamp():
		return nil
	case l.last:
		return fmt.Errorf("save the update checkpoint: %w", saveErr)
	}
	return fmt.Errorf("%w (saved by %s)", ErrDeposed, found.Writer)
}
