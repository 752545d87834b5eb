package bot

import (
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// fromTelegram turns a Telegram update into an Update. It reports false for
// what the bot does not act on: edited messages, channel posts, messages
// without text or sender, button presses on messages it cannot place in a
// chat (inline-mode messages), and anything without a chat or user ID.
func fromTelegram(tu tgbotapi.Update) (Update, bool) {
	u, ok := convert(tu)
	if !ok || u.ChatID == 0 || u.UserID == 0 {
		return Update{}, false
	}
	u.Received = time.Now() // converted as it is fetched or posted
	return u, true
}

func convert(tu tgbotapi.Update) (Update, bool) {
	switch {
	case tu.Message != nil:
		m := tu.Message
		if m.From == nil || m.Chat == nil || m.Text == "" {
			return Update{}, false
		}
		return Update{
			ID:        int64(tu.UpdateID),
			ChatID:    m.Chat.ID,
			ChatType:  m.Chat.Type,
			UserID:    m.From.ID,
			Username:  m.From.UserName,
			MessageID: m.MessageID,
			Text:      m.Text,
		}, true
	case tu.CallbackQuery != nil:
		q := tu.CallbackQuery
		if q.From == nil || q.Message == nil || q.Message.Chat == nil {
			return Update{}, false
		}
		return Update{
			ID:        int64(tu.UpdateID),
			ChatID:    q.Message.Chat.ID,
			ChatType:  q.Message.Chat.Type,
			UserID:    q.From.ID,
			Username:  q.From.UserName,
			MessageID: q.Message.MessageID,
			Callback:  &Callback{ID: q.ID, Data: q.Data},
		}, true
	}
	return Update{}, false
}
