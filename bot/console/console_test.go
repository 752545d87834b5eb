package console

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/bot"
)

const consoleChat, consoleUser = 1, 42

// deleter is a tiny engine: /list answers, /delete asks Yes/No, Yes deletes
// and notifies another chat; whatever else is echoed.
func deleter(m bot.Messenger, seen *[]bot.Update) bot.Handler {
	return bot.HandlerFunc(func(ctx context.Context, u bot.Update) {
		*seen = append(*seen, u)
		var r bot.Reply
		switch {
		case u.Callback != nil && u.Callback.Data == "delete:web:yes":
			_ = m.AnswerCallback(ctx, u.Callback.ID, "deleting web")
			r = bot.Reply{ChatID: u.ChatID, EditMessageID: u.MessageID, Text: "<b>web</b> deleted"}
			_, _ = m.Send(ctx, bot.Reply{ChatID: -100, Text: "web was deleted by @" + u.Username})
		case u.Callback != nil:
			_ = m.AnswerCallback(ctx, u.Callback.ID, "")
			r = bot.Reply{ChatID: u.ChatID, EditMessageID: u.MessageID, Text: "kept web"}
		case u.Text == "/list":
			r = bot.Reply{ChatID: u.ChatID, Text: "<b>web</b> Ready 3/3 &amp; <i>api</i> Pending 0/1"}
		case u.Text == "/delete web":
			r = bot.Reply{ChatID: u.ChatID, Text: "Delete <b>web</b>?", Buttons: [][]bot.Button{{{Text: "Yes", Data: "delete:web:yes"}, {Text: "No", Data: "delete:web:no"}}}}
		default:
			r = bot.Reply{ChatID: u.ChatID, Text: "you wrote " + u.Text}
		}
		_, _ = m.Send(ctx, r)
	})
}

func TestConsoleEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		input      string
		wantOutput string
		wantData   []string // callback data of the updates, "" for text
	}{
		{
			name:       "plain command",
			input:      "/list\n",
			wantOutput: "web Ready 3/3 & api Pending 0/1\n",
			wantData:   []string{""},
		},
		{
			name:  "pressing Yes by #number",
			input: "/delete web\n#1\n",
			wantOutput: "Delete web?\n  [#1] Yes\n  [#2] No\n" +
				"  (deleting web)\n[chat -100] web was deleted by @alice\n(edited) web deleted\n",
			wantData: []string{"", "delete:web:yes"},
		},
		{
			name:       "pressing No by # number",
			input:      "/delete web\n# 2\n",
			wantOutput: "Delete web?\n  [#1] Yes\n  [#2] No\n(edited) kept web\n",
			wantData:   []string{"", "delete:web:no"},
		},
		{
			name:       "a number without buttons is text",
			input:      "3\n\n   \n",
			wantOutput: "you wrote 3\n",
			wantData:   []string{""},
		},
		{
			name:       "choices end when the buttons are edited away",
			input:      "/delete web\n#2\n#1\n",
			wantOutput: "Delete web?\n  [#1] Yes\n  [#2] No\n(edited) kept web\nyou wrote #1\n",
			wantData:   []string{"", "delete:web:no", ""},
		},
		{
			name:       "a choice out of range is text",
			input:      "/delete web\n#3\n",
			wantOutput: "Delete web?\n  [#1] Yes\n  [#2] No\nyou wrote #3\n",
			wantData:   []string{"", ""},
		},
		{
			// The /scale conversation shows buttons 3 4 6 7 10: typing 4
			// means 4 replicas, not the fourth button (7).
			name:       "a plain number is text even while buttons show",
			input:      "/delete web\n2\n",
			wantOutput: "Delete web?\n  [#1] Yes\n  [#2] No\nyou wrote 2\n",
			wantData:   []string{"", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			c := New(Config{In: strings.NewReader(tt.input), Out: &out, ChatID: consoleChat, UserID: consoleUser, Username: "alice"})
			var seen []bot.Update
			require.NoError(t, c.Run(context.Background(), deleter(c.Messenger(), &seen)))

			assert.Equal(t, tt.wantOutput, out.String())
			require.Len(t, seen, len(tt.wantData))
			for i, u := range seen {
				assert.Equal(t, int64(consoleChat), u.ChatID)
				assert.Equal(t, int64(consoleUser), u.UserID)
				assert.Equal(t, int64(i+1), u.ID, "update IDs increase")
				if tt.wantData[i] == "" {
					assert.Nil(t, u.Callback)
					continue
				}
				require.NotNil(t, u.Callback)
				assert.Equal(t, tt.wantData[i], u.Callback.Data)
				assert.Equal(t, seen[i-1].MessageID+1, u.MessageID, "the press names the message with the buttons")
			}
		})
	}
}

func TestConsoleStopsWithTheContext(t *testing.T) {
	t.Parallel()
	reader, writer := io.Pipe()
	defer writer.Close()
	c := New(Config{In: reader, Out: &strings.Builder{}, ChatID: consoleChat, UserID: consoleUser})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, bot.HandlerFunc(func(context.Context, bot.Update) {})) }()
	cancel()
	assert.NoError(t, <-done)
}
