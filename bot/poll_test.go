package bot

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

func TestPollingDeliversEachChatInOrder(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	chats := []telegramemu.Chat{private(1001), private(1002), group(-500)}
	want := map[int64][]string{}
	for i := range 10 {
		for _, c := range chats {
			text := "/list " + string(rune('a'+i))
			emu.SendText(c, alice, text)
			want[c.ID] = append(want[c.ID], text)
		}
	}
	rec := newRecorder()
	run(t, newTelegram(t, emu, nil), rec)

	rec.waitFor(t, 30)
	for _, c := range chats {
		assert.Equal(t, want[c.ID], rec.texts(c.ID), "chat %d", c.ID)
	}
	waitUntil(t, "the emulator has no unconfirmed update", func() bool { return emu.PendingUpdates() == 0 })
	assert.Zero(t, emu.Stats().PollConflicts)
}

func TestPollingHandlesChatsConcurrently(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	emu.SendText(private(1001), alice, "slow")
	emu.SendText(private(1002), bob, "fast")
	fastDone := make(chan struct{})
	var slowSawFast bool
	handler := HandlerFunc(func(ctx context.Context, u Update) {
		switch u.Text {
		case "fast":
			close(fastDone)
		case "slow":
			// Chat 1001 waits for chat 1002: sequential handling never gets there.
			select {
			case <-fastDone:
				slowSawFast = true
			case <-time.After(5 * time.Second):
			}
		}
	})
	stop := run(t, newTelegram(t, emu, nil), handler)
	waitUntil(t, "both updates are confirmed", func() bool { return emu.PendingUpdates() == 0 })
	require.NoError(t, stop())
	assert.True(t, slowSawFast, "chat 1002 was not handled while chat 1001 was busy")
}

// Updates are confirmed to Telegram once accepted, while their handlers
// still run; a restart runs what was accepted and not started, once.
func TestPollingConfirmsAcceptedUpdates(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	chat := private(1001)
	emu.SendText(chat, alice, "block")
	emu.SendText(chat, alice, "/scale web +2")
	emu.SendText(private(1002), bob, "/list")
	cp := &MemoryCheckpoint{}

	// The first run stops while handling the first update.
	first := newBlocker()
	stop := run(t, newTelegram(t, emu, func(c *Config) { c.Checkpoint = cp }), first)
	<-first.entered
	first.waitFor(t, 2)
	waitUntil(t, "the updates are confirmed while one still runs", func() bool { return emu.PendingUpdates() == 0 })
	require.NoError(t, stop())
	assert.Equal(t, []string{"block"}, first.texts(chat.ID))

	// After the restart only the update that had not started runs.
	second := newRecorder()
	run(t, newTelegram(t, emu, func(c *Config) { c.Checkpoint = cp }), second)
	second.waitFor(t, 1)
	assert.Equal(t, []string{"/scale web +2"}, second.texts(chat.ID))
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, second.handled(), 1, "an update ran twice")
}

func TestPollingStopsPromptly(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	emu.SendText(private(1001), alice, "/help")
	rec := newRecorder()
	tg := newTelegram(t, emu, func(c *Config) { c.PollTimeout = time.Minute })
	stop := run(t, tg, rec)
	rec.waitFor(t, 1)
	waitUntil(t, "the next long poll confirmed the update", func() bool { return emu.PendingUpdates() == 0 })

	start := time.Now()
	require.NoError(t, stop())
	assert.Less(t, time.Since(start), 3*time.Second, "a minute-long poll was not cut short")
}

func TestPollingBacksOffOnErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault telegramemu.Fault
	}{
		{"server errors", telegramemu.Fault{Method: "getUpdates", Count: 2, Status: 502}},
		{"dropped connections", telegramemu.Fault{Method: "getUpdates", Count: 2, Drop: true}},
		{"flood control", telegramemu.Fault{Method: "getUpdates", Count: 1, Status: 429, RetryAfter: 1}},
		{"conflict", telegramemu.Fault{Method: "getUpdates", Count: 2, Status: 409}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := telegramemu.New(t, telegramemu.Options{})
			emu.Fail(tt.fault)
			emu.SendText(private(1001), alice, "/help")
			rec := newRecorder()
			start := time.Now()
			run(t, newTelegram(t, emu, nil), rec)

			rec.waitFor(t, 1)
			assert.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "retried without waiting")
			assert.LessOrEqual(t, emu.Stats().Requests["getUpdates"], tt.fault.Count+2, "busy loop")
		})
	}
}

func TestPollingFailsOnAnEndpointWithoutGetUpdates(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	emu.Fail(telegramemu.Fault{Method: "getUpdates", Count: 1, Status: 404})
	err := newTelegram(t, emu, nil).Run(context.Background(), newRecorder())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "getUpdates")
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no token", Config{Endpoint: emu.Endpoint()}, "token is required"},
		{"wrong token", Config{Token: "1:WRONG", Endpoint: emu.Endpoint()}, "Unauthorized"},
		{"endpoint without verbs", Config{Token: emu.Token(), Endpoint: "http://127.0.0.1:1/"}, "two %s"},
		{"unknown mode", Config{Token: emu.Token(), Endpoint: emu.Endpoint(), Mode: "carrier-pigeon"}, "carrier-pigeon"},
		{"webhook without secret", Config{Token: emu.Token(), Endpoint: emu.Endpoint(), Mode: ModeWebhook, WebhookListen: ":0", WebhookURL: "https://x.example/hook"}, "secret"},
		{"webhook with a bad secret", Config{Token: emu.Token(), Endpoint: emu.Endpoint(), Mode: ModeWebhook, WebhookListen: ":0", WebhookURL: "https://x.example/hook", WebhookSecret: "no spaces"}, "secret"},
		{"webhook without URL", Config{Token: emu.Token(), Endpoint: emu.Endpoint(), Mode: ModeWebhook, WebhookListen: ":0", WebhookSecret: "s3cret"}, "URL"},
		{"webhook without listen", Config{Token: emu.Token(), Endpoint: emu.Endpoint(), Mode: ModeWebhook, WebhookURL: "https://x.example/hook", WebhookSecret: "s3cret"}, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestSetCommands(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	tg := newTelegram(t, emu, nil)
	cmds := []Command{{"list", "list the apps"}, {"scale", "scale an app"}}

	require.NoError(t, tg.SetCommands(context.Background(), cmds))
	assert.Equal(t, []telegramemu.BotCommand{{Command: "list", Description: "list the apps"}, {Command: "scale", Description: "scale an app"}}, emu.Commands())

	emu.Fail(telegramemu.Fault{Method: "setMyCommands", Count: 1, Status: 404})
	assert.NoError(t, tg.SetCommands(context.Background(), cmds), "a missing setMyCommands must be skipped")
}

func TestHealthyFollowsPolling(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	tg := newTelegram(t, emu, func(c *Config) { c.PollTimeout = time.Second })
	require.ErrorIs(t, tg.Healthy(), errNotStarted, "a bot that receives nothing yet is not healthy")

	run(t, tg, newRecorder())
	waitUntil(t, "polling succeeds", func() bool { return tg.Healthy() == nil && emu.Stats().Requests["getUpdates"] > 0 })

	emu.Fail(telegramemu.Fault{Method: "getUpdates", Until: time.Now().Add(3 * time.Second), Status: http.StatusBadGateway})
	waitUntil(t, "a failing poll shows", func() bool { return tg.Healthy() != nil })
	waitUntil(t, "polling recovers", func() bool { return tg.Healthy() == nil })
}

// When Telegram restarts its update IDs below the bot's offset (after a week
// without updates), polling goes on with the new IDs: nothing is skipped and
// nothing stays unconfirmed.
func TestPollingFollowsARestartOfTheUpdateIDs(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	emu.SendText(private(1001), alice, "/list")
	rec := newRecorder()
	run(t, newTelegram(t, emu, nil), rec)
	rec.waitFor(t, 1)
	waitUntil(t, "the first update is confirmed", func() bool { return emu.PendingUpdates() == 0 })

	emu.RestartUpdateIDs(5)
	emu.SendText(private(1001), alice, "/status web")
	emu.SendText(private(1001), alice, "/help")
	rec.waitFor(t, 3)
	assert.Equal(t, []string{"/list", "/status web", "/help"}, rec.texts(1001))
	waitUntil(t, "the new updates are confirmed", func() bool { return emu.PendingUpdates() == 0 })
}
