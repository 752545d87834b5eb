package report

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator/inspect"
)

func TestFormatEventsFitsOneMessage(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var events []inspect.Event
	for i := range 200 {
		events = append(events, inspect.Event{
			Last: now.Add(-time.Duration(i) * time.Minute), Type: "Warning", Reason: "BackOff", Count: 3,
			Object: fmt.Sprintf("pod/web-7d4b9-%05d", i), Message: strings.Repeat("<img src=x> & ", 40),
		})
	}
	text := formatEvents("shop", "web", events, now)
	assert.LessOrEqual(t, utf8.RuneCountInString(text), bot.MaxTextLength)
	assert.True(t, strings.HasPrefix(text, "Events of <b>web</b> in <b>shop</b>, newest first:\n⚠️ 0s ago <b>BackOff</b> <code>pod/web-7d4b9-00000</code>: "), text[:200])
	assert.NotContains(t, text, "<img")
	assert.Contains(t, text, "… (×3)")
	assert.Regexp(t, `\n… and \d+ older\.$`, text)

	assert.Equal(t, "No Events for <b>web</b> in <b>shop</b>. The API server keeps them for about an hour.", formatEvents("shop", "web", nil, now))
	one := formatEvents("shop", "web", []inspect.Event{{Last: now.Add(-90 * time.Second), Type: "Normal", Reason: "Scheduled", Object: "pod/web-1", Message: "ok", Count: 1}}, now)
	assert.Equal(t, "Events of <b>web</b> in <b>shop</b>, newest first:\n• 90s ago <b>Scheduled</b> <code>pod/web-1</code>: ok", one)
}

func TestChoosePod(t *testing.T) {
	now := time.Now()
	pods := []inspect.Pod{{Name: "web-b", Created: now, Ready: true}, {Name: "web-a", Created: now.Add(-time.Minute), Ready: false}}
	pod, reply := choosePod(pods, "", "shop", "web")
	assert.Equal(t, "web-a", pod.Name, "the newest pod that is not Ready")
	assert.Empty(t, reply)
	pod, _ = choosePod(pods[:1], "", "shop", "web")
	assert.Equal(t, "web-b", pod.Name, "all Ready: the newest")
	pod, _ = choosePod(pods, "web-b", "shop", "web")
	assert.Equal(t, "web-b", pod.Name)
	_, reply = choosePod(pods, "db-1", "shop", "web")
	assert.Equal(t, "<b>web</b> has no pod <code>db-1</code> in <b>shop</b>. Its pods: <code>web-b</code>, <code>web-a</code>.", reply)
	_, reply = choosePod(nil, "", "shop", "web")
	assert.Equal(t, "<b>web</b> has no pods in <b>shop</b> right now. /status web says why.", reply)
}
