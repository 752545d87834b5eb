package progress

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/test/telegramemu"
)

// newMessenger is the real Telegram transport's Messenger, talking to a Bot
// API emulator; fast limits on both sides keep the tests quick.
func newMessenger(t *testing.T) (*telegramemu.Server, bot.Messenger) {
	t.Helper()
	emu := telegramemu.New(t, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	fast := bot.Rate{Every: time.Millisecond, Burst: 10}
	tg, err := bot.New(bot.Config{
		Token: emu.Token(), Endpoint: emu.Endpoint(), RequestTimeout: 5 * time.Second,
		Limits: bot.Limits{PerChat: fast, PerGroup: fast, Global: fast},
	})
	require.NoError(t, err)
	t.Cleanup(tg.Close)
	return emu, tg.Messenger()
}
