package resilience

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

// TestTelegramFailingLosesNothingAndDoesNotSpin runs the announcer with the
// real bot sender while the Bot API answers 5xx, then 429 with retry_after,
// then drops connections, each for a while, as TeleApps become Ready: every
// chat gets every notice exactly once, and the sender never tries a chat
// more than about once a second.
func TestTelegramFailingLosesNothingAndDoesNotSpin(t *testing.T) {
	window := 5 * time.Second
	if soak() {
		window = 30 * time.Second
	}
	announceThroughFaults(t, window, exactlyOnce, []telegramemu.Fault{
		{Method: "sendMessage", Status: 502},
		{Method: "sendMessage", Status: 429, RetryAfter: 2},
		{Method: "sendMessage", Drop: true},
	})
}

// TestTelegramStallingPastTheTimeoutLosesNothing has the Bot API stall past
// the sender's request timeout. Telegram has no idempotency key, so a timed
// out send has an unknown outcome; teleop chooses to send again rather than
// risk losing a notice (docs/reliability.md). Every notice arrives; one whose
// first send was processed after all arrives twice, which the test reports.
func TestTelegramStallingPastTheTimeoutLosesNothing(t *testing.T) {
	announceThroughFaults(t, 5*time.Second, atLeastOnce, []telegramemu.Fault{
		{Method: "sendMessage", Delay: 3 * time.Second}, // past the sender's 2 s request timeout
	})
}

// delivery is what a fault test expects of each notice.
type delivery bool

const (
	exactlyOnce delivery = true
	atLeastOnce delivery = false
)

// announceThroughFaults makes three TeleApps Ready under each fault in turn,
// each fault lasting window, and checks what three chats were told.
func announceThroughFaults(t *testing.T, window time.Duration, want delivery, faults []telegramemu.Fault) {
	chats := []int64{7001, 7002, -7003}
	c := cluster.Shared(t)
	w := newWorld(t, c)
	runOperatorInProcess(t, c, w.ns)
	emu := telegramemu.New(t, telegramemu.Options{})
	var chatIDs []string
	for _, id := range chats {
		chatIDs = append(chatIDs, strconv.FormatInt(id, 10))
	}
	startAnnouncer(t, w, emu, chatIDs)

	ctx := context.Background()
	begin := time.Now()
	var names []string
	for round, f := range faults {
		f.Until = time.Now().Add(window)
		emu.Fail(f)
		for i := range 3 {
			name := fmt.Sprintf("app-%d-%d", round, i)
			names = append(names, name)
			_, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Create(ctx, teleApp(w.ns, name, 1), metav1.CreateOptions{})
			require.NoError(t, err)
		}
		time.Sleep(time.Until(f.Until))
	}
	for _, chat := range chats {
		waitReadyNotices(t, emu, chat, names, want)
	}
	elapsed := time.Since(begin)
	stats := emu.Stats()
	sends := stats.Requests["sendMessage"]
	t.Logf("%d notices to %d chats through %d faulty windows of %v: %d sendMessage requests (%d faulted) in %v",
		len(names), len(chats), len(faults), window, sends, stats.FaultsInjected, elapsed.Round(time.Second))
	assert.Positive(t, stats.FaultsInjected, "the faults were hit")
	// The sender paces each chat to one call a second at most (groups one
	// in three) and backs off on errors: more would be a busy loop.
	assert.LessOrEqual(t, sends, len(chats)*int(elapsed.Seconds()+1), "sendMessage requests: no busy loop")
}

// startAnnouncer wires the announcer as cmd does: the real bot transport
// talking to the emulator, the operator's TeleApp cache,
// Events recorded for real.
func startAnnouncer(t *testing.T, w *world, emu *telegramemu.Server, chats []string) {
	tg, err := bot.New(bot.Config{Token: emu.Token(), Endpoint: emu.Endpoint(), RequestTimeout: 2 * time.Second})
	require.NoError(t, err)
	factory := operator.NewTeleAppInformers(w.tele, w.ns, 0)
	recorder, stopRecorder := apps.NewEventRecorder(w.kube, "teleop")
	announcer, err := announce.NewController(w.tele, factory.Teleop().V1alpha1().TeleApps(), progress.NewNotifier(tg.Messenger()),
		recorder, announce.Options{NotifyChats: chats, Settle: announce.DefaultSettle})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- announcer.Run(ctx, 4) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		tg.Close()
		factory.Shutdown()
		stopRecorder()
	})
}

// waitReadyNotices waits until chat was told that each app is ready, then
// checks that it was told so once.
func waitReadyNotices(t *testing.T, emu *telegramemu.Server, chat int64, names []string, want delivery) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	counts := func() map[string]int {
		out := map[string]int{}
		for _, m := range emu.Messages(chat) {
			for _, notice := range strings.Split(m.Text, "\n\n") { // coalesced messages
				for _, name := range names {
					if strings.Contains(notice, "<b>"+name+"</b> is ready") {
						out[name]++
					}
				}
			}
		}
		return out
	}
	for {
		got := counts()
		if len(got) == len(names) {
			for _, name := range names {
				if want == atLeastOnce {
					t.Logf("chat %d told %s is ready %d times", chat, name, got[name])
					continue
				}
				if !assert.Equal(t, 1, got[name], "chat %d told %s is ready", chat, name) {
					for _, m := range emu.Messages(chat) {
						t.Logf("chat %d message %d: %q", chat, m.ID, m.Text)
					}
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("chat %d was told of %d of %d apps: %v", chat, len(got), len(names), got)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
