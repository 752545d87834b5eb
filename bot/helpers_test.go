package bot

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// Builders for the chats and users the tests play.

func private(id int64) telegramemu.Chat { return telegramemu.Chat{ID: id, Type: "private"} }
func group(id int64) telegramemu.Chat {
	return telegramemu.Chat{ID: id, Type: "group", Title: "ops"}
}

var (
	alice = telegramemu.User{ID: 1001, Username: "alice", FirstName: "Alice"}
	bob   = telegramemu.User{ID: 1002, Username: "bob", FirstName: "Bob"}
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTelegram connects a transport to emu; tweak adjusts the config.
func newTelegram(t testing.TB, emu *telegramemu.Server, tweak func(*Config)) *Telegram {
	t.Helper()
	cfg := Config{
		Token: emu.Token(), Endpoint: emu.Endpoint(),
		PollTimeout: time.Second, Logger: testLogger(t),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	tg, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(tg.Close)
	return tg
}

// run runs tg in the background; the returned stop cancels it and returns
// Run's error.
func run(t testing.TB, tg *Telegram, h Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tg.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10 s of cancellation")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// recorder is a Handler that remembers the updates it handled.
type recorder struct {
	mu      sync.Mutex
	updates []Update
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) HandleUpdate(_ context.Context, u Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) handled() []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Update(nil), r.updates...)
}

// texts returns the texts handled in chatID, in order.
func (r *recorder) texts(chatID int64) []string {
	var out []string
	for _, u := range r.handled() {
		if u.ChatID == chatID {
			out = append(out, u.Text)
		}
	}
	return out
}

// waitFor waits until n updates were handled.
func (r *recorder) waitFor(t testing.TB, n int) []Update {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got, changed := len(r.updates), r.changed
		r.mu.Unlock()
		if got >= n {
			return r.handled()
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("handled %d updates, want %d: %+v", got, n, r.handled())
		}
	}
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newTestDispatcher is a dispatcher over a ledger opened on cp.
func newTestDispatcher(t testing.TB, ctx context.Context, cp Checkpoint, h Handler) *dispatcher {
	t.Helper()
	l, err := openLedger(ctx, cp, nil, testLogger(t))
	require.NoError(t, err)
	return newDispatcher(ctx, h, l, time.Minute, nil, testLogger(t))
}

// idle reports whether d has no update running or waiting.
func idle(d *dispatcher) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.chats) == 0
}
