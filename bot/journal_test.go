package bot

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blocker is a Handler that records updates and holds those whose text is
// "block" until released or its context ends.
type blocker struct {
	*recorder
	release chan struct{}
	entered chan Update
}

func newBlocker() *blocker {
	return &blocker{recorder: newRecorder(), release: make(chan struct{}), entered: make(chan Update, 10)}
}

func (b *blocker) HandleUpdate(ctx context.Context, u Update) {
	b.recorder.HandleUpdate(ctx, u)
	if u.Text == "block" {
		b.entered <- u
		select {
		case <-b.release:
		case <-ctx.Done():
		}
	}
}

func text(id, chat int64, s string) Update {
	return Update{ID: id, ChatID: chat, ChatType: "private", UserID: chat, Text: s}
}

func savedState(t *testing.T, cp Checkpoint) checkpointState {
	t.Helper()
	raw, err := cp.Load(context.Background())
	require.NoError(t, err)
	var st checkpointState
	require.NoError(t, json.Unmarshal(raw, &st))
	return st
}

// An instance that dies with updates accepted but not started leaves them in
// the checkpoint; the next one runs exactly those, and not the one that had
// started.
func TestLedgerReplaysAcceptedUpdatesOnce(t *testing.T) {
	t.Parallel()
	cp := &MemoryCheckpoint{}
	ctx, crash := context.WithCancel(context.Background())
	first := newBlocker()
	d := newTestDispatcher(t, ctx, cp, first)
	require.NoError(t, d.accept(ctx, batch{updates: []Update{text(10, 1, "block"), text(11, 1, "/scale web +2"), text(12, 2, "/list")}, ignored: []int64{13}}))
	<-first.entered
	first.waitFor(t, 2) // chat 2 is not held up by chat 1
	st := savedState(t, cp)
	assert.Equal(t, int64(14), st.Offset)
	require.Len(t, st.Pending, 1)
	assert.Equal(t, int64(11), st.Pending[0].ID)
	crash()
	d.wait()

	second := newRecorder()
	d = newTestDispatcher(t, context.Background(), cp, second)
	second.waitFor(t, 1)
	waitUntil(t, "the replay is done", func() bool { return idle(d) })
	assert.Equal(t, []string{"/scale web +2"}, second.texts(1))
	assert.Len(t, second.handled(), 1)
	assert.Empty(t, savedState(t, cp).Pending)

	// A delivery of anything below the offset is a repeat.
	require.NoError(t, d.accept(context.Background(), batch{updates: []Update{text(10, 1, "block"), text(12, 2, "/list")}}))
	assert.Len(t, second.handled(), 1, "a repeated update ran")
}

func TestLedgerBoundsAChatsBacklog(t *testing.T) {
	t.Parallel()
	cp := &MemoryCheckpoint{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newBlocker()
	d := newTestDispatcher(t, ctx, cp, h)
	updates := []Update{text(1, 1, "block")}
	for id := int64(2); id <= maxChatBacklog+50; id++ {
		updates = append(updates, text(id, 1, "hello"))
	}
	updates = append(updates, text(1000, 2, "/list"))
	require.NoError(t, d.accept(ctx, batch{updates: updates}))
	<-h.entered

	st := savedState(t, cp)
	assert.Len(t, st.Pending, maxChatBacklog, "the backlog of chat 1 outgrew its bound")
	assert.Equal(t, int64(maxChatBacklog+50), st.Pending[len(st.Pending)-1].ID, "the newest updates are kept")
	h.waitFor(t, 2)
	assert.Equal(t, []string{"/list"}, h.texts(2), "the flood in chat 1 held up chat 2")
	close(h.release)
	h.waitFor(t, 1+maxChatBacklog+1)
}

// fencedCheckpoint is a checkpoint shared by several instances, each with
// its own view, refusing a save from a view that is behind, as a ConfigMap
// does with a stale resourceVersion.
type fencedCheckpoint struct {
	mu      sync.Mutex
	data    []byte
	version int
}

type fencedView struct {
	store *fencedCheckpoint
	seen  int
}

var errStale = errors.New("conflict: the checkpoint changed")

func (v *fencedView) Load(context.Context) ([]byte, error) {
	v.store.mu.Lock()
	defer v.store.mu.Unlock()
	v.seen = v.store.version
	return v.store.data, nil
}

func (v *fencedView) Save(_ context.Context, data []byte) error {
	v.store.mu.Lock()
	defer v.store.mu.Unlock()
	if v.seen != v.store.version {
		return errStale
	}
	v.store.data = data
	v.store.version++
	v.seen = v.store.version
	return nil
}

func TestLedgerOfADeposedInstanceStops(t *testing.T) {
	t.Parallel()
	store := &fencedCheckpoint{}
	ctx := context.Background()
	old := newTestDispatcher(t, ctx, &fencedView{store: store}, newRecorder())
	require.NoError(t, old.accept(ctx, batch{updates: []Update{text(1, 1, "/list")}}))

	successor := newRecorder()
	next := newTestDispatcher(t, ctx, &fencedView{store: store}, successor)
	require.NoError(t, next.accept(ctx, batch{updates: []Update{text(2, 1, "/status web")}}))

	err := old.accept(ctx, batch{updates: []Update{text(3, 1, "/scale web 0")}})
	require.ErrorIs(t, err, ErrDeposed)
	assert.Equal(t, int64(3), savedState(t, &fencedView{store: store}).Offset, "the deposed instance overwrote its successor")
	successor.waitFor(t, 1)
}

// After a week without updates Telegram restarts its update IDs below the
// offset. The ledger counts from the new ID when a poll for the offset
// brought it, or when the offset last moved longer ago than Telegram keeps
// an update to deliver again; a redelivery within that time is skipped.
func TestLedgerFollowsARestartOfTheUpdateIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		polled  int64
		silence time.Duration
		handled bool
	}{
		{name: "webhook redelivery an hour later", silence: time.Hour, handled: false},
		{name: "webhook delivery a week later", silence: 7 * 24 * time.Hour, handled: true},
		{name: "poll for the offset, an hour later", polled: 101, silence: time.Hour, handled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			rec := newRecorder()
			d := newTestDispatcher(t, ctx, &MemoryCheckpoint{}, rec)
			clock := time.Now()
			d.ledger.now = func() time.Time { return clock }
			require.NoError(t, d.accept(ctx, batch{updates: []Update{text(100, 1, "/list")}}))
			rec.waitFor(t, 1)

			clock = clock.Add(tt.silence)
			require.NoError(t, d.accept(ctx, batch{updates: []Update{text(7, 1, "/status web")}, polled: tt.polled}))
			if !tt.handled {
				assert.Equal(t, int64(101), d.ledger.nextOffset())
				assert.Equal(t, []string{"/list"}, rec.texts(1))
				return
			}
			rec.waitFor(t, 2)
			assert.Equal(t, []string{"/list", "/status web"}, rec.texts(1))
			assert.Equal(t, int64(8), d.ledger.nextOffset())
		})
	}
}

// refuserAfterSave admits every update but refuse, which it refuses only
// once the checkpoint holds the updates before it: the pass over it comes
// after the save of the batch's accepted updates began.
type refuserAfterSave struct {
	*recorder
	cp     Checkpoint
	refuse int64
}

func (r *refuserAfterSave) Admit(ctx context.Context, u Update) bool {
	if u.ID != r.refuse {
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		raw, err := r.cp.Load(ctx)
		var st checkpointState
		if err == nil && json.Unmarshal(raw, &st) == nil && st.Offset == r.refuse {
			break
		}
	}
	return false
}

func (r *refuserAfterSave) HandleAdmitted(ctx context.Context, u Update) { r.HandleUpdate(ctx, u) }

// accept returns once a save carries all of the batch, as it promises, the
// updates passed over after its accepted ones included.
func TestLedgerSavesABatchsPassesBeforeConfirmingIt(t *testing.T) {
	t.Parallel()
	cp := &MemoryCheckpoint{}
	h := &refuserAfterSave{recorder: newRecorder(), cp: cp, refuse: 13}
	d := newTestDispatcher(t, context.Background(), cp, h)
	require.NoError(t, d.accept(context.Background(), batch{updates: []Update{text(11, 1, "/list"), text(12, 2, "/list"), text(13, 3, "/list")}}))
	assert.Equal(t, int64(14), savedState(t, cp).Offset)
	h.waitFor(t, 1)
	h.waitFor(t, 2)
}
