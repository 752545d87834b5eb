package bot

import (
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/stretchr/testify/assert"
)

func tgUser(id int64, name string) *tgbotapi.User { return &tgbotapi.User{ID: id, UserName: name} }

func tgMessage(chatID int64, chatType string, from *tgbotapi.User, text string) *tgbotapi.Message {
	return &tgbotapi.Message{MessageID: 42, From: from, Chat: &tgbotapi.Chat{ID: chatID, Type: chatType}, Text: text}
}

func TestFromTelegram(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		update tgbotapi.Update
		want   Update
		wantOK bool
	}{
		{
			name:   "text in a private chat",
			update: tgbotapi.Update{UpdateID: 7, Message: tgMessage(1001, "private", tgUser(1001, "alice"), "/list")},
			want:   Update{ID: 7, ChatID: 1001, ChatType: "private", UserID: 1001, Username: "alice", MessageID: 42, Text: "/list"},
			wantOK: true,
		},
		{
			name:   "text in a group",
			update: tgbotapi.Update{UpdateID: 8, Message: tgMessage(-100500, "supergroup", tgUser(1002, "bob"), "/scale@teleop_bot web 3")},
			want:   Update{ID: 8, ChatID: -100500, ChatType: "supergroup", UserID: 1002, Username: "bob", MessageID: 42, Text: "/scale@teleop_bot web 3"},
			wantOK: true,
		},
		{
			name: "button press",
			update: tgbotapi.Update{UpdateID: 9, CallbackQuery: &tgbotapi.CallbackQuery{
				ID: "q1", From: tgUser(1001, "alice"), Data: "delete:web:yes",
				Message: tgMessage(1001, "private", tgUser(1, "teleop_bot"), "Delete web?"),
			}},
			want:   Update{ID: 9, ChatID: 1001, ChatType: "private", UserID: 1001, Username: "alice", MessageID: 42, Callback: &Callback{ID: "q1", Data: "delete:web:yes"}},
			wantOK: true,
		},
		{name: "edited message", update: tgbotapi.Update{UpdateID: 10, EditedMessage: tgMessage(1001, "private", tgUser(1001, "alice"), "/list")}},
		{name: "channel post", update: tgbotapi.Update{UpdateID: 11, ChannelPost: tgMessage(-100, "channel", nil, "/list")}},
		{name: "photo without text", update: tgbotapi.Update{UpdateID: 12, Message: tgMessage(1001, "private", tgUser(1001, "alice"), "")}},
		{name: "message without sender", update: tgbotapi.Update{UpdateID: 13, Message: tgMessage(1001, "private", nil, "/list")}},
		{name: "sender without ID", update: tgbotapi.Update{UpdateID: 14, Message: tgMessage(1001, "private", tgUser(0, ""), "/list")}},
		{name: "chat without ID", update: tgbotapi.Update{UpdateID: 15, Message: tgMessage(0, "private", tgUser(1001, "alice"), "/list")}},
		{name: "inline-mode button press", update: tgbotapi.Update{UpdateID: 16, CallbackQuery: &tgbotapi.CallbackQuery{ID: "q2", From: tgUser(1001, "alice"), InlineMessageID: "im", Data: "x"}}},
		{name: "nothing", update: tgbotapi.Update{UpdateID: 17}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			got, ok := fromTelegram(tt.update)
			assert.Equal(t, tt.wantOK, ok)
			if ok {
				assert.WithinRange(t, got.Received, before, time.Now(), "stamped when converted")
				got.Received = time.Time{}
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
