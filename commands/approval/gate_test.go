package approval

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/teleop/teleop/operator/approvals"
)

func TestParseButtonRefusesForgedData(t *testing.T) {
	id := approvals.NewID()
	tests := []struct {
		data              string
		ours, ok, approve bool
	}{
		{data: buttonData(id, true), ours: true, ok: true, approve: true},
		{data: buttonData(id, false), ours: true, ok: true},
		{data: "cv:1:abc:2:0"},
		{data: ""},
		{data: "ap:", ours: true},
		{data: "ap:" + id, ours: true},
		{data: "ap:" + id + ":x", ours: true},
		{data: "ap:" + id + ":a:extra", ours: true},
		{data: "ap:" + strings.ToUpper(id) + ":a", ours: true},
		{data: "ap:" + id[:15] + ":a", ours: true},
		{data: "ap:../../" + id[:8] + ":a", ours: true},
		{data: "ap:" + id + "\x00:a", ours: true},
		{data: "ap:" + strings.Repeat("f", 60) + ":a", ours: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.data), func(t *testing.T) {
			gotID, approve, ours, ok := parseButton(tt.data)
			assert.Equal(t, tt.ours, ours)
			assert.Equal(t, tt.ok, ok)
			if ok {
				assert.Equal(t, id, gotID)
				assert.Equal(t, tt.approve, approve)
			}
		})
	}
	assert.LessOrEqual(t, len(buttonData(id, true)), 64, "Telegram's callback data limit")
}

func TestReplyWordsHeldChangesOnly(t *testing.T) {
	req := approvals.Request{Command: "/delete <web>", Actor: "telegram:1 (@alice)"}
	text, ok := Reply(fmt.Errorf("delete: %w", &PendingError{Namespace: "prod", Name: "web", Request: req}))
	assert.True(t, ok)
	assert.Equal(t, "⏳ <code>/delete &lt;web&gt;</code> needs a second person in <b>prod</b>: I posted the request. Nothing changes until someone who may approve it does.", text)
	text, ok = Reply(&PendingError{Namespace: "prod", Name: "web", Request: req, Busy: true})
	assert.True(t, ok)
	assert.Contains(t, text, "already has a change waiting for approval")
	_, ok = Reply(errors.New("boom"))
	assert.False(t, ok)
}
