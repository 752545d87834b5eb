package telegramemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// Builders for the chats and users the tests play.

func private(id int64) telegramemu.Chat { return telegramemu.Chat{ID: id, Type: "private"} }
func group(id int64) telegramemu.Chat {
	return telegramemu.Chat{ID: id, Type: "group", Title: "ops"}
}
func user(id int64, name string) telegramemu.User {
	return telegramemu.User{ID: id, Username: name, FirstName: strings.ToUpper(name[:1]) + name[1:]}
}

var alice = user(1001, "alice")

// fakeClock drives the flood limits and fault deadlines.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newBot connects the real Telegram library to s, as the bot transport does.
func newBot(t *testing.T, s *telegramemu.Server) *tgbotapi.BotAPI {
	t.Helper()
	bot, err := tgbotapi.NewBotAPIWithAPIEndpoint(s.Token(), s.Endpoint())
	require.NoError(t, err)
	return bot
}

// apiError extracts the Bot API error from err, failing the test otherwise.
func apiError(t *testing.T, err error) *tgbotapi.Error {
	t.Helper()
	var apiErr *tgbotapi.Error
	require.ErrorAs(t, err, &apiErr)
	return apiErr
}

func html(chatID int64, text string) tgbotapi.MessageConfig {
	m := tgbotapi.NewMessage(chatID, text)
	m.ParseMode = tgbotapi.ModeHTML
	return m
}

func TestGetMe(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{Token: "4242:SECRET", BotUsername: "ops_bot"})
	bot := newBot(t, s)
	assert.Equal(t, int64(4242), bot.Self.ID)
	assert.Equal(t, "ops_bot", bot.Self.UserName)
	assert.True(t, bot.Self.IsBot)
}

func TestRequestsRefused(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantDesc string
	}{
		{name: "wrong token", path: "/bot999:WRONG/getMe", wantCode: 401, wantDesc: "Unauthorized"},
		{name: "unknown method", path: "/bot" + s.Token() + "/sendRocket", wantCode: 404, wantDesc: "Not Found"},
		{name: "no method", path: "/bot" + s.Token() + "/", wantCode: 404, wantDesc: "Not Found"},
		{name: "not a bot path", path: "/file/x", wantCode: 404, wantDesc: "Not Found"},
	}
	base := strings.TrimSuffix(s.Endpoint(), "/bot%s/%s")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.PostForm(base+tt.path, url.Values{})
			require.NoError(t, err)
			defer resp.Body.Close()
			var body struct {
				Ok          bool   `json:"ok"`
				ErrorCode   int    `json:"error_code"`
				Description string `json:"description"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, tt.wantCode, resp.StatusCode)
			assert.False(t, body.Ok)
			assert.Equal(t, tt.wantCode, body.ErrorCode)
			assert.Equal(t, tt.wantDesc, body.Description)
		})
	}
}

func TestRequestEncodings(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	method := strings.TrimSuffix(s.Endpoint(), "/bot%s/%s") + "/bot" + s.Token() + "/sendMessage"
	tests := []struct {
		name string
		do   func() (*http.Response, error)
	}{
		{name: "query", do: func() (*http.Response, error) { return http.Get(method + "?chat_id=5&text=query") }},
		{name: "JSON", do: func() (*http.Response, error) {
			return http.Post(method, "application/json", strings.NewReader(`{"chat_id":5,"text":"JSON"}`))
		}},
		{name: "form", do: func() (*http.Response, error) {
			return http.PostForm(method, url.Values{"chat_id": {"5"}, "text": {"form"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.do()
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
	var texts []string
	for _, m := range s.Messages(5) {
		texts = append(texts, m.Text)
	}
	assert.Equal(t, []string{"query", "JSON", "form"}, texts)
}

func TestLongPolling(t *testing.T) {
	t.Run("returns as soon as a user writes", func(t *testing.T) {
		s := telegramemu.New(t, telegramemu.Options{})
		bot := newBot(t, s)
		got := make(chan []tgbotapi.Update, 1)
		go func() {
			updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
			assert.NoError(t, err)
			got <- updates
		}()
		waitFor(t, func() bool { return s.Stats().Requests["getUpdates"] == 1 })
		id := s.SendText(group(-77), alice, "/scale@teleop_bot web +2")

		select {
		case updates := <-got:
			require.Len(t, updates, 1)
			u := updates[0]
			assert.Equal(t, int(id), u.UpdateID)
			require.NotNil(t, u.Message)
			assert.Equal(t, "/scale@teleop_bot web +2", u.Message.Text)
			assert.Equal(t, int64(-77), u.Message.Chat.ID)
			assert.Equal(t, "group", u.Message.Chat.Type)
			assert.Equal(t, int64(1001), u.Message.From.ID)
			assert.Equal(t, "alice", u.Message.From.UserName)
			assert.True(t, u.Message.IsCommand())
			assert.Equal(t, "scale", u.Message.Command())
			assert.Equal(t, "web +2", u.Message.CommandArguments())
		case <-time.After(10 * time.Second):
			t.Fatal("long poll did not return after an update arrived")
		}
	})
	t.Run("times out empty", func(t *testing.T) {
		s := telegramemu.New(t, telegramemu.Options{})
		bot := newBot(t, s)
		start := time.Now()
		updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
		require.NoError(t, err)
		assert.Empty(t, updates)
		assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "the poll was not held open")
	})
}

// waitFor polls cond until it holds, for state the emulator changes in
// another goroutine.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond)
}

func TestOffsetConfirmsUpdates(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	var ids []int
	for _, text := range []string{"one", "two", "three"} {
		ids = append(ids, int(s.SendText(private(5), alice, text)))
	}

	updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	require.NoError(t, err)
	require.Len(t, updates, 3, "no offset: everything pending")

	updates, err = bot.GetUpdates(tgbotapi.UpdateConfig{Limit: 2})
	require.NoError(t, err)
	require.Len(t, updates, 2)
	assert.Equal(t, ids[:2], []int{updates[0].UpdateID, updates[1].UpdateID})

	updates, err = bot.GetUpdates(tgbotapi.UpdateConfig{Offset: ids[1] + 1})
	require.NoError(t, err)
	require.Len(t, updates, 1)
	assert.Equal(t, "three", updates[0].Message.Text)
	assert.Equal(t, 1, s.PendingUpdates())

	updates, err = bot.GetUpdates(tgbotapi.UpdateConfig{Offset: ids[2] + 1})
	require.NoError(t, err)
	assert.Empty(t, updates)
	assert.Zero(t, s.PendingUpdates())
}

// After RestartUpdateIDs, as after Telegram's week without updates, the
// next update has a lower ID than the bot's offset, and that stale offset
// does not confirm it.
func TestRestartedUpdateIDsAreNotConfirmedByAStaleOffset(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	old := int(s.SendText(private(5), alice, "before"))
	_, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: old + 1})
	require.NoError(t, err)
	require.Zero(t, s.PendingUpdates())

	s.RestartUpdateIDs(7)
	restarted := int(s.SendText(private(5), alice, "after a week"))
	assert.Equal(t, 7, restarted)
	updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: old + 1})
	require.NoError(t, err)
	require.Len(t, updates, 1, "the stale offset confirms nothing")
	assert.Equal(t, "after a week", updates[0].Message.Text)

	updates, err = bot.GetUpdates(tgbotapi.UpdateConfig{Offset: restarted + 1})
	require.NoError(t, err)
	assert.Empty(t, updates)
	assert.Zero(t, s.PendingUpdates())
}

func TestGetUpdatesConflicts(t *testing.T) {
	t.Run("a second poller ends the first", func(t *testing.T) {
		s := telegramemu.New(t, telegramemu.Options{})
		first, second := newBot(t, s), newBot(t, s)
		firstErr := make(chan error, 1)
		go func() {
			_, err := first.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
			firstErr <- err
		}()
		waitFor(t, func() bool { return s.Stats().Requests["getUpdates"] == 1 })

		_, err := second.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
		require.NoError(t, err)
		apiErr := apiError(t, <-firstErr)
		assert.Equal(t, http.StatusConflict, apiErr.Code)
		assert.Contains(t, apiErr.Message, "terminated by other getUpdates request")
		st := s.Stats()
		assert.Equal(t, 1, st.PollConflicts)
		assert.Equal(t, 2, st.MaxConcurrentPolls)
	})
	t.Run("while a webhook is set", func(t *testing.T) {
		s := telegramemu.New(t, telegramemu.Options{})
		bot := newBot(t, s)
		hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		t.Cleanup(hook.Close)
		_, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": hook.URL})
		require.NoError(t, err)

		_, err = bot.GetUpdates(tgbotapi.UpdateConfig{})
		apiErr := apiError(t, err)
		assert.Equal(t, http.StatusConflict, apiErr.Code)
		assert.Contains(t, apiErr.Message, "webhook is active")

		_, err = bot.Request(tgbotapi.DeleteWebhookConfig{})
		require.NoError(t, err)
		_, err = bot.GetUpdates(tgbotapi.UpdateConfig{})
		assert.NoError(t, err, "polling works again after deleteWebhook")
	})
}

// webhookRecorder is the bot's webhook endpoint: it fails the first
// failFirst deliveries with 500 and records every request.
type webhookRecorder struct {
	mu        sync.Mutex
	failFirst int
	requests  []webhookRequest
}

type webhookRequest struct {
	secret string
	update tgbotapi.Update
	status int
}

func (w *webhookRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var u tgbotapi.Update
	status := http.StatusOK
	if json.Unmarshal(body, &u) != nil {
		status = http.StatusBadRequest
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.requests) < w.failFirst {
		status = http.StatusInternalServerError
	}
	w.requests = append(w.requests, webhookRequest{secret: r.Header.Get("X-Telegram-Bot-Api-Secret-Token"), update: u, status: status})
	rw.WriteHeader(status)
}

func (w *webhookRecorder) all() []webhookRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]webhookRequest(nil), w.requests...)
}

func (w *webhookRecorder) accepted() []webhookRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ok []webhookRequest
	for _, r := range w.requests {
		if r.status == http.StatusOK {
			ok = append(ok, r)
		}
	}
	return ok
}

func TestWebhookDelivery(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{WebhookRetry: time.Millisecond})
	bot := newBot(t, s)
	rec := &webhookRecorder{failFirst: 2}
	hook := httptest.NewServer(rec)
	t.Cleanup(hook.Close)

	// v5.5.1 has no secret_token field: the transport sends it raw like this.
	_, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": hook.URL + "/hook", "secret_token": "s3cr3t_-X", "max_connections": "10"})
	require.NoError(t, err)
	gotURL, gotSecret, set := s.Webhook()
	assert.Equal(t, hook.URL+"/hook", gotURL)
	assert.Equal(t, "s3cr3t_-X", gotSecret)
	assert.True(t, set)

	first := s.SendText(private(5), alice, "/list")
	second := s.SendText(private(5), alice, "/whoami")
	// The recorder sees a request before the emulator sees its answer.
	waitFor(t, func() bool { return s.Stats().WebhookDeliveries == 2 })

	accepted := rec.accepted()
	assert.Equal(t, []int{int(first), int(second)}, []int{accepted[0].update.UpdateID, accepted[1].update.UpdateID}, "delivered in order")
	all := rec.all()
	for _, r := range all {
		assert.Equal(t, "s3cr3t_-X", r.secret)
	}
	require.Len(t, all, 4, "the first update was retried twice after 500s")
	assert.Equal(t, int(first), all[0].update.UpdateID)
	st := s.Stats()
	assert.Equal(t, 2, st.WebhookDeliveries)
	assert.Equal(t, 2, st.WebhookFailures)
	assert.Zero(t, s.PendingUpdates())

	info, err := bot.GetWebhookInfo()
	require.NoError(t, err)
	assert.Equal(t, hook.URL+"/hook", info.URL)
	assert.Equal(t, 10, info.MaxConnections)
	assert.Contains(t, info.LastErrorMessage, "500")

	_, err = bot.Request(tgbotapi.DeleteWebhookConfig{DropPendingUpdates: true})
	require.NoError(t, err)
	_, _, set = s.Webhook()
	assert.False(t, set)
}

func TestSetWebhookRefusesBadInput(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	tests := map[string]tgbotapi.Params{
		"not a URL":            {"url": "ftp://example.com/x"},
		"secret with a space":  {"url": "https://example.com/x", "secret_token": "a b"},
		"secret too long":      {"url": "https://example.com/x", "secret_token": strings.Repeat("a", 257)},
		"too many connections": {"url": "https://example.com/x", "max_connections": "101"},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := bot.MakeRequest("setWebhook", p)
			assert.Equal(t, http.StatusBadRequest, apiError(t, err).Code)
			_, _, set := s.Webhook()
			assert.False(t, set)
		})
	}
}

func TestSendMessageValidation(t *testing.T) {
	tests := []struct {
		name     string
		msg      tgbotapi.MessageConfig
		wantDesc string // "" means accepted
	}{
		{name: "plain", msg: tgbotapi.NewMessage(5, "hello")},
		{name: "4096 characters", msg: tgbotapi.NewMessage(5, strings.Repeat("a", 4096))},
		{name: "4097 characters", msg: tgbotapi.NewMessage(5, strings.Repeat("a", 4097)), wantDesc: "Bad Request: message is too long"},
		{name: "2048 emoji are 4096 UTF-16 units", msg: tgbotapi.NewMessage(5, strings.Repeat("🙂", 2048))},
		{name: "2049 emoji are too long", msg: tgbotapi.NewMessage(5, strings.Repeat("🙂", 2049)), wantDesc: "Bad Request: message is too long"},
		{name: "tags do not count", msg: html(5, "<b>"+strings.Repeat("a", 4096)+"</b>")},
		{name: "entities count once", msg: html(5, strings.Repeat("&amp;", 4096))},
		{name: "empty", msg: tgbotapi.NewMessage(5, ""), wantDesc: "Bad Request: message text is empty"},
		{name: "only tags", msg: html(5, "<b> </b>"), wantDesc: "Bad Request: message text is empty"},
		{name: "HTML", msg: html(5, `<b>web</b> <i>scaled</i> <code>3 → 5</code> <a href="https://x.io/?a=1&amp;b=2">x</a> <span class="tg-spoiler">s</span> &lt;&gt;&quot;&#128512;&#x1F600;`)},
		{name: "unclosed tag", msg: html(5, "<b>web"), wantDesc: `Bad Request: can't parse entities: can't find end tag corresponding to start tag "b"`},
		{name: "mismatched tags", msg: html(5, "<b><i>web</b></i>"), wantDesc: `Bad Request: can't parse entities: unmatched end tag at byte offset 9, expected "</i>", found "</b>"`},
		{name: "unsupported tag", msg: html(5, "<div>web</div>"), wantDesc: `Bad Request: can't parse entities: unsupported start tag "div" at byte offset 0`},
		{name: "bare less-than", msg: html(5, "1 < 2"), wantDesc: `Bad Request: can't parse entities: unsupported start tag "" at byte offset 2`},
		{name: "bare ampersand", msg: html(5, "rock & roll"), wantDesc: "Bad Request: can't parse entities: character '&' at byte offset 5 starts no entity; escape it as &amp;"},
		{name: "unknown entity", msg: html(5, "&nbsp;"), wantDesc: "Bad Request: can't parse entities: character '&' at byte offset 0 starts no entity; escape it as &amp;"},
		{name: "end tag first", msg: html(5, "web</b>"), wantDesc: "Bad Request: can't parse entities: unexpected end tag at byte offset 3"},
		{name: "span without spoiler", msg: html(5, `<span class="x">a</span>`), wantDesc: `Bad Request: can't parse entities: tag "span" must have class "tg-spoiler" at byte offset 0`},
		{name: "markdown", msg: tgbotapi.MessageConfig{BaseChat: tgbotapi.BaseChat{ChatID: 5}, Text: "*a*", ParseMode: tgbotapi.ModeMarkdownV2}, wantDesc: "Bad Request: telegramemu supports parse_mode HTML only, not MarkdownV2"},
		{name: "reply to a missing message", msg: tgbotapi.MessageConfig{BaseChat: tgbotapi.BaseChat{ChatID: 5, ReplyToMessageID: 99}, Text: "a"}, wantDesc: "Bad Request: message to be replied not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := telegramemu.New(t, telegramemu.Options{})
			bot := newBot(t, s)
			sent, err := bot.Send(tt.msg)
			if tt.wantDesc == "" {
				require.NoError(t, err)
				require.Len(t, s.Messages(5), 1)
				assert.Equal(t, tt.msg.Text, s.Messages(5)[0].Text)
				assert.Equal(t, sent.MessageID, s.Messages(5)[0].ID)
				return
			}
			apiErr := apiError(t, err)
			assert.Equal(t, http.StatusBadRequest, apiErr.Code)
			assert.Equal(t, tt.wantDesc, apiErr.Message)
			assert.Empty(t, s.Messages(5), "a refused message changes nothing")
		})
	}
}

func TestCallbackDataLimit(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		wantOK bool
	}{
		{name: "64 bytes", data: strings.Repeat("d", 64), wantOK: true},
		{name: "65 bytes", data: strings.Repeat("d", 65)},
		{name: "64 bytes of 2-byte runes plus one", data: strings.Repeat("é", 32) + "x"},
		{name: "empty", data: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := telegramemu.New(t, telegramemu.Options{})
			bot := newBot(t, s)
			msg := tgbotapi.NewMessage(5, "pick")
			msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("b", tt.data)))
			_, err := bot.Send(msg)
			if tt.wantOK {
				require.NoError(t, err)
				return
			}
			apiErr := apiError(t, err)
			assert.Equal(t, http.StatusBadRequest, apiErr.Code)
			assert.Equal(t, "Bad Request: BUTTON_DATA_INVALID", apiErr.Message)
			assert.Empty(t, s.Messages(5))
		})
	}
}

func TestFloodLimits(t *testing.T) {
	t.Run("one chat", func(t *testing.T) {
		clock := newFakeClock()
		s := telegramemu.New(t, telegramemu.Options{Now: clock.Now})
		bot := newBot(t, s)
		var sent int
		var limited *tgbotapi.Error
		for range 10 {
			_, err := bot.Send(tgbotapi.NewMessage(5, "flood"))
			if err != nil {
				limited = apiError(t, err)
				break
			}
			sent++
		}
		require.NotNil(t, limited, "an unthrottled bot must get a 429")
		assert.Equal(t, telegramemu.DefaultLimits.PerChat.Burst, sent)
		assert.Equal(t, http.StatusTooManyRequests, limited.Code)
		assert.Equal(t, 1, limited.RetryAfter)
		assert.Equal(t, "Too Many Requests: retry after 1", limited.Message)

		_, err := bot.Send(tgbotapi.NewMessage(6, "another chat is not limited"))
		require.NoError(t, err)
		clock.Advance(time.Second)
		_, err = bot.Send(tgbotapi.NewMessage(5, "after retry_after"))
		require.NoError(t, err)
		st := s.Stats()
		assert.Equal(t, 1, st.RateLimited)
		assert.Equal(t, 1, st.TooManyRequests)
	})
	t.Run("one message a second is fine in a private chat, not in a group", func(t *testing.T) {
		clock := newFakeClock()
		s := telegramemu.New(t, telegramemu.Options{Now: clock.Now})
		bot := newBot(t, s)
		for i := range 60 {
			_, err := bot.Send(tgbotapi.NewMessage(5, "tick"))
			require.NoError(t, err, "private message %d", i)
			clock.Advance(time.Second)
		}
		var groupErr error
		for range 60 {
			if _, groupErr = bot.Send(tgbotapi.NewMessage(-100, "tick")); groupErr != nil {
				break
			}
			clock.Advance(time.Second)
		}
		apiErr := apiError(t, groupErr)
		assert.Equal(t, http.StatusTooManyRequests, apiErr.Code)
		assert.GreaterOrEqual(t, apiErr.RetryAfter, 1)
	})
	t.Run("thirty a second overall", func(t *testing.T) {
		clock := newFakeClock()
		s := telegramemu.New(t, telegramemu.Options{Now: clock.Now})
		bot := newBot(t, s)
		for chat := range int64(30) {
			_, err := bot.Send(tgbotapi.NewMessage(chat+1, "fan-out"))
			require.NoError(t, err)
		}
		_, err := bot.Send(tgbotapi.NewMessage(31, "one too many"))
		assert.Equal(t, http.StatusTooManyRequests, apiError(t, err).Code)
	})
	t.Run("off", func(t *testing.T) {
		s := telegramemu.New(t, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
		bot := newBot(t, s)
		for range 50 {
			_, err := bot.Send(tgbotapi.NewMessage(-5, "no limits"))
			require.NoError(t, err)
		}
	})
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault telegramemu.Fault
		// check inspects the error of the first faulted sendMessage.
		check func(t *testing.T, err error)
	}{
		{
			name:  "5xx",
			fault: telegramemu.Fault{Method: "sendMessage", Count: 2, Status: http.StatusBadGateway},
			check: func(t *testing.T, err error) {
				apiErr := apiError(t, err)
				assert.Equal(t, http.StatusBadGateway, apiErr.Code)
				assert.Equal(t, "Bad Gateway", apiErr.Message)
			},
		},
		{
			name:  "429 with retry_after",
			fault: telegramemu.Fault{Method: "sendmessage", Count: 2, Status: http.StatusTooManyRequests, RetryAfter: 7},
			check: func(t *testing.T, err error) {
				apiErr := apiError(t, err)
				assert.Equal(t, http.StatusTooManyRequests, apiErr.Code)
				assert.Equal(t, 7, apiErr.RetryAfter)
			},
		},
		{
			name:  "dropped connection",
			fault: telegramemu.Fault{Count: 2, Drop: true},
			check: func(t *testing.T, err error) {
				var apiErr *tgbotapi.Error
				assert.False(t, errors.As(err, &apiErr), "a dropped connection is no API answer: %v", err)
			},
		},
		{
			name:  "slow answers",
			fault: telegramemu.Fault{Method: "sendMessage", Count: 2, Delay: time.Minute},
			check: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := telegramemu.New(t, telegramemu.Options{})
			bot := newBot(t, s)
			bot.Client = &http.Client{Timeout: 2 * time.Second} // short enough for the slow answers, long enough under load
			s.Fail(tt.fault)

			for range 2 {
				_, err := bot.Send(tgbotapi.NewMessage(5, "faulted"))
				require.Error(t, err)
				tt.check(t, err)
			}
			_, err := bot.Send(tgbotapi.NewMessage(5, "after the fault"))
			require.NoError(t, err)
			msgs := s.Messages(5)
			require.Len(t, msgs, 1, "faulted calls change nothing")
			assert.Equal(t, "after the fault", msgs[0].Text)
			st := s.Stats()
			assert.Equal(t, 2, st.FaultsInjected)
			assert.Equal(t, 3, st.Requests["sendMessage"])
		})
	}
}

func TestFaultUntil(t *testing.T) {
	clock := newFakeClock()
	s := telegramemu.New(t, telegramemu.Options{Now: clock.Now})
	bot := newBot(t, s)
	s.Fail(telegramemu.Fault{Until: clock.Now().Add(10 * time.Second), Status: http.StatusServiceUnavailable})

	for _, call := range []func() error{
		func() error { _, err := bot.GetMe(); return err },
		func() error { _, err := bot.Send(tgbotapi.NewMessage(5, "x")); return err },
		func() error { _, err := bot.GetMe(); return err },
	} {
		assert.Equal(t, http.StatusServiceUnavailable, apiError(t, call()).Code, "every method fails until the deadline")
	}
	clock.Advance(10 * time.Second)
	_, err := bot.GetMe()
	assert.NoError(t, err)
}

func TestFaultReplacesTheOneForTheSameMethod(t *testing.T) {
	clock := newFakeClock()
	s := telegramemu.New(t, telegramemu.Options{Now: clock.Now})
	bot := newBot(t, s)
	send := func() error { _, err := bot.Send(tgbotapi.NewMessage(5, "x")); return err }

	s.Fail(telegramemu.Fault{Method: "sendMessage", Until: clock.Now().Add(time.Hour), Status: http.StatusBadGateway})
	s.Fail(telegramemu.Fault{Method: "getMe", Count: 1, Status: http.StatusServiceUnavailable})
	assert.Equal(t, http.StatusBadGateway, apiError(t, send()).Code)

	s.Fail(telegramemu.Fault{Method: "sendMessage", Count: 1, Status: http.StatusTooManyRequests, RetryAfter: 2})
	assert.Equal(t, 2, apiError(t, send()).RetryAfter, "the newer fault replaced the hour-long one")
	assert.NoError(t, send(), "and it was used up")

	s.Fail(telegramemu.Fault{Method: "sendMessage", Until: clock.Now().Add(time.Hour), Status: http.StatusBadGateway})
	s.Fail(telegramemu.Fault{Method: "sendMessage", Until: clock.Now(), Status: http.StatusBadGateway})
	assert.NoError(t, send(), "a fault that has already ended clears the method")
	_, err := bot.GetMe()
	assert.Equal(t, http.StatusServiceUnavailable, apiError(t, err).Code, "faults of other methods are kept")
}

func TestFailRefusesFaultsThatNeverEnd(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	recorder := &errorRecorder{TB: t}
	telegramemu.New(recorder, telegramemu.Options{}).Fail(telegramemu.Fault{Status: 500})
	assert.True(t, recorder.failed, "a fault without Count or Until is a test bug")
	_, err := bot.GetMe()
	assert.NoError(t, err)
}

// errorRecorder records Errorf instead of failing the test.
type errorRecorder struct {
	testing.TB
	failed bool
}

func (r *errorRecorder) Errorf(string, ...any) { r.failed = true }

func TestChatsMarkedUnreachable(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	s.MarkBlocked(5)
	s.MarkUnknown(-6)

	_, err := bot.Send(tgbotapi.NewMessage(5, "hi"))
	apiErr := apiError(t, err)
	assert.Equal(t, http.StatusForbidden, apiErr.Code)
	assert.Equal(t, "Forbidden: bot was blocked by the user", apiErr.Message)

	_, err = bot.Send(tgbotapi.NewMessage(-6, "hi"))
	apiErr = apiError(t, err)
	assert.Equal(t, http.StatusBadRequest, apiErr.Code)
	assert.Equal(t, "Bad Request: chat not found", apiErr.Message)
	assert.Empty(t, s.Messages(5))
	assert.Empty(t, s.Messages(-6))
}

func TestInlineKeyboardRoundTrip(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	chat := group(-42)
	ask := html(chat.ID, "Delete <b>web</b>?")
	ask.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("Yes", "del:web:yes"),
		tgbotapi.NewInlineKeyboardButtonData("No", "del:web:no"),
	))
	sent, err := bot.Send(ask)
	require.NoError(t, err)
	assert.Equal(t, "Delete web?", sent.Text, "Telegram answers with the parsed text")

	msgs := s.Messages(chat.ID)
	require.Len(t, msgs, 1)
	assert.Equal(t, [][]telegramemu.Button{{{Text: "Yes", Data: "del:web:yes"}, {Text: "No", Data: "del:web:no"}}}, msgs[0].Buttons)
	assert.Equal(t, "HTML", msgs[0].ParseMode)

	updateID, callbackID := s.PressButton(chat, alice, sent.MessageID, "del:web:yes")
	updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	require.NoError(t, err)
	require.Len(t, updates, 1)
	cb := updates[0].CallbackQuery
	require.NotNil(t, cb)
	assert.Equal(t, int(updateID), updates[0].UpdateID)
	assert.Equal(t, callbackID, cb.ID)
	assert.Equal(t, "del:web:yes", cb.Data)
	assert.Equal(t, int64(1001), cb.From.ID)
	require.NotNil(t, cb.Message)
	assert.Equal(t, sent.MessageID, cb.Message.MessageID)
	assert.Equal(t, chat.ID, cb.Message.Chat.ID)

	answered, _ := s.CallbackAnswer(callbackID)
	assert.False(t, answered)
	toast := make(chan string, 1)
	go func() {
		text, err := s.WaitCallbackAnswer(context.Background(), callbackID)
		assert.NoError(t, err)
		toast <- text
	}()
	_, err = bot.Request(tgbotapi.NewCallback(cb.ID, "Deleting…"))
	require.NoError(t, err)
	answered, text := s.CallbackAnswer(callbackID)
	assert.True(t, answered)
	assert.Equal(t, "Deleting…", text)
	assert.Equal(t, "Deleting…", <-toast)
	_, err = s.WaitCallbackAnswer(context.Background(), "no-such-query")
	assert.Error(t, err)

	_, err = bot.Request(tgbotapi.NewCallback(cb.ID, "again"))
	assert.Equal(t, http.StatusBadRequest, apiError(t, err).Code, "a query is answered once")
	_, err = bot.Request(tgbotapi.NewCallback("1", ""))
	assert.Equal(t, http.StatusBadRequest, apiError(t, err).Code, "unknown query")
}

func TestEditAndDelete(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	keyboard := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("3", "r:3")))
	ask := tgbotapi.NewMessage(5, "Replicas?")
	ask.ReplyMarkup = keyboard
	sent, err := bot.Send(ask)
	require.NoError(t, err)
	userMsg := s.SendText(private(5), alice, "hello")
	require.NotZero(t, userMsg)

	edit := func(c tgbotapi.Chattable) error { _, err := bot.Request(c); return err }
	steps := []struct {
		name     string
		call     tgbotapi.Chattable
		wantDesc string
		want     telegramemu.Message
	}{
		{
			name:     "same text and keyboard",
			call:     tgbotapi.NewEditMessageTextAndMarkup(5, sent.MessageID, "Replicas?", keyboard),
			wantDesc: "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
		},
		{
			name: "text without markup removes the keyboard",
			call: tgbotapi.NewEditMessageText(5, sent.MessageID, "Scaling web 3 → 5…"),
			want: telegramemu.Message{ID: sent.MessageID, ChatID: 5, Text: "Scaling web 3 → 5…", Edits: 1},
		},
		{
			name: "markup only",
			call: tgbotapi.NewEditMessageReplyMarkup(5, sent.MessageID, keyboard),
			want: telegramemu.Message{ID: sent.MessageID, ChatID: 5, Text: "Scaling web 3 → 5…", Edits: 2, Buttons: [][]telegramemu.Button{{{Text: "3", Data: "r:3"}}}},
		},
		{
			name: "the same markup again",
			call: tgbotapi.NewEditMessageReplyMarkup(5, sent.MessageID, keyboard), wantDesc: "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
		},
		{name: "a message that does not exist", call: tgbotapi.NewEditMessageText(5, 999, "x"), wantDesc: "Bad Request: message to edit not found"},
		{name: "a message in another chat", call: tgbotapi.NewEditMessageText(6, sent.MessageID, "x"), wantDesc: "Bad Request: message to edit not found"},
		{name: "the user's message", call: tgbotapi.NewEditMessageText(5, sent.MessageID+1, "x"), wantDesc: "Bad Request: message can't be edited"},
		{name: "bad HTML", call: tgbotapi.EditMessageTextConfig{BaseEdit: tgbotapi.BaseEdit{ChatID: 5, MessageID: sent.MessageID}, Text: "<b>", ParseMode: "HTML"}, wantDesc: `Bad Request: can't parse entities: can't find end tag corresponding to start tag "b"`},
		{
			name: "delete",
			call: tgbotapi.NewDeleteMessage(5, sent.MessageID),
			want: telegramemu.Message{ID: sent.MessageID, ChatID: 5, Text: "Scaling web 3 → 5…", Edits: 2, Buttons: [][]telegramemu.Button{{{Text: "3", Data: "r:3"}}}, Deleted: true},
		},
		{name: "delete twice", call: tgbotapi.NewDeleteMessage(5, sent.MessageID), wantDesc: "Bad Request: message to delete not found"},
	}
	for _, step := range steps {
		before := s.Messages(5)
		err := edit(step.call)
		if step.wantDesc != "" {
			apiErr := apiError(t, err)
			assert.Equal(t, step.wantDesc, apiErr.Message, step.name)
			assert.Equal(t, before, s.Messages(5), "%s: a refused edit changes nothing", step.name)
			continue
		}
		require.NoError(t, err, step.name)
		got := s.Messages(5)
		require.Len(t, got, 1, step.name)
		assert.False(t, got[0].Sent.IsZero(), "%s: the message keeps when it was sent", step.name)
		got[0].Sent = time.Time{} // the wall clock: not part of what an edit changes
		assert.Equal(t, []telegramemu.Message{step.want}, got, step.name)
	}
}

func TestWaitMessage(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	sent, err := bot.Send(tgbotapi.NewMessage(5, "Scaling web 3 → 5… 3/5 ready"))
	require.NoError(t, err)

	ready := func(m telegramemu.Message) bool { return strings.HasPrefix(m.Text, "web is ready") }
	got := make(chan telegramemu.Message, 1)
	go func() {
		m, err := s.WaitMessage(context.Background(), 5, ready)
		assert.NoError(t, err)
		got <- m
	}()
	_, err = bot.Request(tgbotapi.NewEditMessageText(5, sent.MessageID, "web is ready: 5/5 in 7 s"))
	require.NoError(t, err)
	select {
	case m := <-got:
		assert.Equal(t, sent.MessageID, m.ID)
		assert.Equal(t, 1, m.Edits)
	case <-time.After(5 * time.Second):
		t.Fatal("WaitMessage missed an edit")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.WaitMessage(ctx, 5, func(m telegramemu.Message) bool { return m.Text == "never" })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "web is ready", "the error shows what the chat has")
}

func TestSetMyCommands(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	menu := []tgbotapi.BotCommand{{Command: "list", Description: "list apps"}, {Command: "scale", Description: "scale an app"}}
	_, err := bot.Request(tgbotapi.NewSetMyCommands(menu...))
	require.NoError(t, err)
	assert.Equal(t, []telegramemu.BotCommand{{Command: "list", Description: "list apps"}, {Command: "scale", Description: "scale an app"}}, s.Commands())

	_, err = bot.Request(tgbotapi.NewSetMyCommands(tgbotapi.BotCommand{Command: "Bad-Command", Description: "x"}))
	assert.Equal(t, http.StatusBadRequest, apiError(t, err).Code)
	assert.Len(t, s.Commands(), 2, "a refused menu changes nothing")
}

func TestForgeCallback(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	_, callbackID := s.ForgeCallback(private(5), alice, 77, "del:kube-system:yes")
	updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{})
	require.NoError(t, err)
	require.Len(t, updates, 1)
	assert.Equal(t, "del:kube-system:yes", updates[0].CallbackQuery.Data)
	assert.Equal(t, 77, updates[0].CallbackQuery.Message.MessageID)
	_, err = bot.Request(tgbotapi.NewCallback(callbackID, "no such button"))
	assert.NoError(t, err, "a forged press can still be answered")
}

func TestPressingAMissingButtonFailsTheTest(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	recorder := &errorRecorder{TB: t}
	other := telegramemu.New(recorder, telegramemu.Options{})
	bot := newBot(t, s)
	_, err := bot.Send(tgbotapi.NewMessage(5, "no buttons"))
	require.NoError(t, err)
	other.PressButton(private(5), alice, 1, "x")
	assert.True(t, recorder.failed)
	assert.Zero(t, other.PendingUpdates())
}

func TestConcurrentUse(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	bot := newBot(t, s)
	const users, each = 8, 25
	var wg sync.WaitGroup
	for u := range int64(users) {
		wg.Go(func() {
			for range each {
				s.SendText(private(u+1), user(u+1, "user"), "/list")
				_, err := bot.Send(tgbotapi.NewMessage(u+1, "reply"))
				assert.NoError(t, err)
				_ = s.Messages(u + 1)
			}
		})
	}
	seen := 0
	offset := 0
	for seen < users*each {
		updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: offset, Timeout: 5})
		require.NoError(t, err)
		for _, u := range updates {
			seen++
			offset = u.UpdateID + 1
		}
	}
	wg.Wait()
	assert.Equal(t, users*each, seen)
	assert.Equal(t, 1, s.Stats().MaxConcurrentPolls)
}

func TestNewRefusesMalformedTokens(t *testing.T) {
	for _, token := range []string{"nocolon", "abc:def", "0:x", "12:", "12:a/b"} {
		t.Run(token, func(t *testing.T) {
			recorder := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() { // Fatalf ends the goroutine that calls it
				defer close(done)
				telegramemu.New(recorder, telegramemu.Options{Token: token})
			}()
			<-done
			assert.True(t, recorder.fatal)
		})
	}
}

// fatalRecorder records Fatalf and ends the calling goroutine, as Fatalf does.
type fatalRecorder struct {
	testing.TB
	fatal bool
}

func (r *fatalRecorder) Fatalf(string, ...any) {
	r.fatal = true
	runtime.Goexit()
}

func TestAllowedUpdatesAndNegativeOffset(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	s.SendText(private(5), alice, "one")
	_, callbackID := s.ForgeCallback(private(5), alice, 1, "x")
	last := s.SendText(private(5), alice, "three")

	updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{AllowedUpdates: []string{"callback_query"}})
	require.NoError(t, err)
	require.Len(t, updates, 1)
	assert.Equal(t, callbackID, updates[0].CallbackQuery.ID)

	updates, err = bot.GetUpdates(tgbotapi.UpdateConfig{Offset: -1})
	require.NoError(t, err)
	require.Len(t, updates, 1)
	assert.Equal(t, int(last), updates[0].UpdateID)
	assert.Equal(t, 1, s.PendingUpdates(), "a negative offset forgets all earlier updates")
}

func TestSetWebhookEndsALongPoll(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	poller, admin := newBot(t, s), newBot(t, s)
	pollErr := make(chan error, 1)
	go func() {
		_, err := poller.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		pollErr <- err
	}()
	waitFor(t, func() bool { return s.Stats().Requests["getUpdates"] == 1 })
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hook.Close)

	_, err := admin.MakeRequest("setWebhook", tgbotapi.Params{"url": hook.URL})
	require.NoError(t, err)
	apiErr := apiError(t, <-pollErr)
	assert.Equal(t, http.StatusConflict, apiErr.Code)
	assert.Contains(t, apiErr.Message, "webhook is active")
}

func TestWebhookWaitsForAnUnreachableEndpoint(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{WebhookRetry: time.Millisecond})
	bot := newBot(t, s)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := closed.Addr().String()
	require.NoError(t, closed.Close())
	_, err = bot.MakeRequest("setWebhook", tgbotapi.Params{"url": "http://" + addr})
	require.NoError(t, err)
	id := s.SendText(private(5), alice, "/list")

	waitFor(t, func() bool { return s.Stats().WebhookFailures >= 2 })
	assert.Equal(t, 1, s.PendingUpdates(), "an undelivered update is kept")
	listener, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	rec := &webhookRecorder{}
	hook := &httptest.Server{Listener: listener, Config: &http.Server{Handler: rec}}
	hook.Start()
	t.Cleanup(hook.Close)
	waitFor(t, func() bool { return s.PendingUpdates() == 0 })
	require.Len(t, rec.accepted(), 1)
	assert.Equal(t, int(id), rec.accepted()[0].update.UpdateID)
}

func TestDeleteWebhookDropsPendingUpdates(t *testing.T) {
	s := telegramemu.New(t, telegramemu.Options{})
	bot := newBot(t, s)
	s.SendText(private(5), alice, "kept")
	_, err := bot.Request(tgbotapi.DeleteWebhookConfig{})
	require.NoError(t, err)
	assert.Equal(t, 1, s.PendingUpdates())
	_, err = bot.Request(tgbotapi.DeleteWebhookConfig{DropPendingUpdates: true})
	require.NoError(t, err)
	assert.Zero(t, s.PendingUpdates())
}
