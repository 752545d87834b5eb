package telegramemu_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// BenchmarkRoundTrip measures what the emulator adds to a bot's round trip
// (a user writes, getUpdates returns it, the bot replies) and reports it as a
// ratio to the same two form POSTs against a bare HTTP handler, timed in the
// same run.
func BenchmarkRoundTrip(b *testing.B) {
	s := telegramemu.New(b, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	bot, err := tgbotapi.NewBotAPIWithAPIEndpoint(s.Token(), s.Endpoint())
	require.NoError(b, err)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		_, _ = io.WriteString(w, `{"ok":true,"result":[]}`)
	}))
	b.Cleanup(bare.Close)
	chats := []telegramemu.Chat{private(1), private(2), group(-3)}

	b.ResetTimer()
	start := time.Now()
	offset := 0
	for i := range b.N {
		chat := chats[i%len(chats)]
		s.SendText(chat, alice, "/list")
		updates, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: offset, Timeout: 5})
		if err != nil || len(updates) != 1 {
			b.Fatalf("getUpdates: %v (%d updates)", err, len(updates))
		}
		offset = updates[0].UpdateID + 1
		if _, err := bot.Send(tgbotapi.NewMessage(chat.ID, "<b>web</b> Ready 3/3")); err != nil {
			b.Fatal(err)
		}
	}
	emulated := time.Since(start)
	b.StopTimer()

	baselineStart := time.Now()
	for range b.N {
		for _, form := range []url.Values{{"offset": {"1"}, "timeout": {"5"}}, {"chat_id": {"1"}, "text": {"x"}}} {
			resp, err := http.PostForm(bare.URL, form)
			require.NoError(b, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	baseline := time.Since(baselineStart)
	b.ReportMetric(float64(emulated)/float64(baseline), "x-bare-http")
}
