package bot

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

const testSecret = "s3cret_Token-1"

// updateJSON is a message update as Telegram posts it.
func updateJSON(updateID, chatID int64, text string) string {
	return fmt.Sprintf(`{"update_id":%d,"message":{"message_id":7,"date":1,"from":{"id":1001,"is_bot":false,"first_name":"Alice","username":"alice"},"chat":{"id":%d,"type":"private"},"text":%q}}`, updateID, chatID, text)
}

// webhookUnderTest serves a webhook handler over a recorder.
func webhookUnderTest(t *testing.T) (http.Handler, *recorder) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	d := newTestDispatcher(t, ctx, &MemoryCheckpoint{}, rec)
	t.Cleanup(func() { cancel(); d.wait() })
	return newWebhookHandler(testSecret, d, testLogger(t)), rec
}

func TestWebhookHandler(t *testing.T) {
	t.Parallel()
	valid := updateJSON(5, 1001, "/list")
	tests := []struct {
		name        string
		method      string
		secret      string
		body        string
		wantStatus  int
		wantHandled bool
	}{
		{"valid", http.MethodPost, testSecret, valid, http.StatusOK, true},
		{"missing secret", http.MethodPost, "", valid, http.StatusUnauthorized, false},
		{"wrong secret", http.MethodPost, "s3cret_Token-2", valid, http.StatusUnauthorized, false},
		{"secret prefix", http.MethodPost, testSecret[:5], valid, http.StatusUnauthorized, false},
		{"secret with suffix", http.MethodPost, testSecret + "x", valid, http.StatusUnauthorized, false},
		{"GET", http.MethodGet, testSecret, "", http.StatusMethodNotAllowed, false},
		{"malformed JSON", http.MethodPost, testSecret, `{"update_id":`, http.StatusBadRequest, false},
		{"not an object", http.MethodPost, testSecret, `[1,2,3]`, http.StatusBadRequest, false},
		{"huge body", http.MethodPost, testSecret, `{"update_id":1,"x":"` + strings.Repeat("a", MaxWebhookBody) + `"}`, http.StatusRequestEntityTooLarge, false},
		{"edited message ignored", http.MethodPost, testSecret, `{"update_id":6,"edited_message":{"message_id":7,"date":1,"from":{"id":1},"chat":{"id":1,"type":"private"},"text":"x"}}`, http.StatusOK, false},
		{"unknown kind ignored", http.MethodPost, testSecret, `{"update_id":8,"poll":{"id":"p"}}`, http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, rec := webhookUnderTest(t)
			req := httptest.NewRequest(tt.method, "/", strings.NewReader(tt.body))
			if tt.secret != "" {
				req.Header.Set(SecretHeader, tt.secret)
			}
			resp := httptest.NewRecorder()
			h.ServeHTTP(resp, req)

			assert.Equal(t, tt.wantStatus, resp.Code, resp.Body.String())
			if tt.wantHandled {
				got := rec.waitFor(t, 1)
				assert.False(t, got[0].Received.IsZero(), "stamped on receipt")
				got[0].Received = time.Time{}
				assert.Equal(t, Update{ID: 5, ChatID: 1001, ChatType: "private", UserID: 1001, Username: "alice", MessageID: 7, Text: "/list"}, got[0])
				return
			}
			time.Sleep(50 * time.Millisecond) // a wrongly queued update would be handled by now
			assert.Empty(t, rec.handled())
		})
	}
}

func TestWebhookRetriedDeliveryRunsOnce(t *testing.T) {
	t.Parallel()
	h, rec := webhookUnderTest(t)
	for range 3 {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(updateJSON(9, 1001, "/scale web +2")))
		req.Header.Set(SecretHeader, testSecret)
		resp := httptest.NewRecorder()
		h.ServeHTTP(resp, req)
		require.Equal(t, http.StatusOK, resp.Code)
	}
	rec.waitFor(t, 1)
	time.Sleep(50 * time.Millisecond)
	assert.Len(t, rec.handled(), 1)
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestWebhookModeWithTheEmulator(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	addr := freeAddr(t)
	tg := newTelegram(t, emu, func(c *Config) {
		c.Mode, c.WebhookListen, c.WebhookURL, c.WebhookSecret = ModeWebhook, addr, "http://"+addr+"/telegram", testSecret
	})
	rec := newRecorder()
	stop := run(t, tg, rec)
	waitUntil(t, "the webhook is registered", func() bool { _, _, set := emu.Webhook(); return set })
	url, secret, _ := emu.Webhook()
	assert.Equal(t, "http://"+addr+"/telegram", url)
	assert.Equal(t, testSecret, secret)

	chat := private(1001)
	emu.SendText(chat, alice, "/list")
	emu.SendText(chat, alice, "/status web")
	rec.waitFor(t, 2)
	assert.Equal(t, []string{"/list", "/status web"}, rec.texts(chat.ID))

	// A forged call without the secret is refused and runs nothing.
	resp, err := http.Post("http://"+addr+"/telegram", "application/json", strings.NewReader(updateJSON(999, 1001, "/delete web")))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	require.NoError(t, stop())
	assert.Len(t, rec.handled(), 2)
	_, _, set := emu.Webhook()
	assert.True(t, set, "the webhook must stay registered for the next instance")
}

func FuzzWebhook(f *testing.F) {
	f.Add(testSecret, updateJSON(1, 1001, "/list"))
	f.Add(testSecret, `{"update_id":2,"callback_query":{"id":"q","from":{"id":1},"message":{"message_id":3,"date":1,"chat":{"id":-5,"type":"group"}},"data":"scale:web:3"}}`)
	f.Add(testSecret, `{"update_id":3,"callback_query":{"id":"q","from":{"id":1},"data":"x"}}`)
	f.Add(testSecret, `{"update_id":4,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"text":"no sender"}}`)
	f.Add(testSecret, `{"update_id":-1,"message":null}`)
	f.Add(testSecret, `{"update_id":1e99}`)
	f.Add(testSecret, `null`)
	f.Add(testSecret, ``)
	f.Add("", updateJSON(1, 1001, "/list"))
	f.Add("wrong", `{}`)
	f.Fuzz(func(t *testing.T, secret, body string) {
		ctx, cancel := context.WithCancel(context.Background())
		var handled []Update
		d := newTestDispatcher(t, ctx, &MemoryCheckpoint{}, HandlerFunc(func(_ context.Context, u Update) { handled = append(handled, u) }))
		h := newWebhookHandler(testSecret, d, testLogger(t))
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set(SecretHeader, secret)
		resp := httptest.NewRecorder()
		h.ServeHTTP(resp, req)
		waitUntil(t, "the queue is drained", func() bool { return idle(d) })
		cancel()
		d.wait()

		if secret != testSecret {
			assert.Equal(t, http.StatusUnauthorized, resp.Code)
		}
		if resp.Code != http.StatusOK {
			assert.Empty(t, handled, "a refused request ran")
		}
		for _, u := range handled {
			assert.NotZero(t, u.ChatID)
			assert.True(t, u.Text != "" || u.Callback != nil, "an update with nothing to act on: %+v", u)
		}
	})
}
