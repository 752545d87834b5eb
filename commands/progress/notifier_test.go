package progress

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/operator/announce"
)

func TestNotifier(t *testing.T) {
	tests := []struct {
		name            string
		chat            string
		blocked         bool
		wantUnreachable bool
		wantText        string
	}{
		{name: "a private chat", chat: "4242", wantText: "✅ <b>web</b> is ready: 3/3 (nginx:1.27) in default"},
		{name: "a group", chat: "-100777", wantText: "✅ <b>web</b> is ready: 3/3 (nginx:1.27) in default"},
		{name: "a chat that blocked the bot", chat: "4243", blocked: true, wantUnreachable: true},
		{name: "no chat ID at all", chat: "@web-team", wantUnreachable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, messenger := newMessenger(t)
			if tt.blocked {
				emu.MarkBlocked(4243)
			}
			err := NewNotifier(messenger).Notify(context.Background(), tt.chat, notice(announce.KindReady, nil))
			if tt.wantUnreachable {
				assert.ErrorIs(t, err, announce.ErrUnreachable)
				return
			}
			require.NoError(t, err)
			id := parseChat(t, tt.chat)
			msgs := emu.Messages(id)
			require.Len(t, msgs, 1)
			assert.Equal(t, tt.wantText, msgs[0].Text)
			assert.Equal(t, "HTML", msgs[0].ParseMode)
		})
	}
}
