package commands

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/report"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/runop"
)

// TestClusterEventsAndLogs reads a running app's Events and its pod's log
// from the chat, each read refused until RBAC grants it; the log comes
// through pods/log from KWOK's kubelet server.
func TestClusterEventsAndLogs(t *testing.T) {
	cw := newClusterWorld(t)
	runop.Start(t, cw.c, cw.namespace)
	const alice, bob = 81, 82
	ns := cw.namespace
	cw.bind(t, alice, access.EditorRole, "create")
	require.Contains(t, cw.say(t, alice, "/create web nginx:1.27 1"), "created")
	var reply string
	require.Eventually(t, func() bool {
		reply = cw.say(t, alice, "/status web")
		return strings.Contains(reply, "1 ready")
	}, 60*time.Second, 500*time.Millisecond, "web never became ready: %s", reply)

	// Each read is refused, naming the role, until it is granted.
	assert.Equal(t, fmt.Sprintf("⛔ You may not get teleapps in namespace %s: ask an admin for teleop-viewer.", ns), cw.say(t, bob, "/events web"))
	assert.Equal(t, fmt.Sprintf("⛔ You may not get teleapps in namespace %s: ask an admin for teleop-viewer.", ns), cw.say(t, bob, "/logs web"))
	cw.bind(t, bob, access.ViewerRole, "get")
	assert.Equal(t, fmt.Sprintf("⛔ You may not get pods/log in namespace %s: ask an admin for teleop-log-reader.", ns), cw.say(t, bob, "/logs web"))

	require.Eventually(t, func() bool {
		reply = cw.say(t, bob, "/events web")
		return strings.Contains(reply, "<code>teleapp/web</code>") && strings.Contains(reply, "<code>deployment/web</code>") &&
			strings.Contains(reply, "<code>pod/web-")
	}, 60*time.Second, 500*time.Millisecond, "events of web: %s", reply)
	assert.True(t, strings.HasPrefix(reply, fmt.Sprintf("Events of <b>web</b> in <b>%s</b>, newest first:", ns)), reply)
	assert.Contains(t, reply, "<b>CreatedFromChat</b>")
	requireSafeHTML(t, reply)
	assert.Contains(t, cw.say(t, bob, "/events nope"), "There is no app <b>nope</b>")

	assert.Equal(t, fmt.Sprintf("⛔ You may not get pods/log in namespace %s: ask an admin for teleop-log-reader.", ns), cw.say(t, bob, "/logs"),
		"the conversation asks before it offers the apps")
	cw.bindFor(t, bob, access.LogReaderRole, access.GetPodLogs)
	reply = cw.say(t, bob, "/logs web")
	assert.Contains(t, reply, "Last 50 lines of <code>pod/web-")
	assert.Contains(t, reply, "(Ready):\n<pre>")
	assert.Equal(t, 50, strings.Count(reply, "fake log line "))
	assert.Contains(t, reply, bot.EscapeHTML(cluster.FakeLogLine(cluster.FakeLogLines)))
	assert.Contains(t, reply, bot.EscapeHTML(cluster.FakeLogLine(cluster.FakeLogLines-49)))
	assert.NotContains(t, reply, "<b>index</b>", "log text is escaped")
	requireSafeHTML(t, reply)

	pod := strings.Split(strings.Split(reply, "<code>pod/")[1], "</code>")[0]
	reply = cw.say(t, bob, fmt.Sprintf("/logs web %s %d", pod, report.MaxLogLines))
	assert.Equal(t, report.MaxLogLines, strings.Count(reply, "fake log line "))
	assert.Contains(t, cw.say(t, bob, "/logs web web-nope-x"), "has no pod <code>web-nope-x</code>")
	assert.Contains(t, cw.say(t, bob, "/logs web 201"), "from 1 to 200")

	// Without a name, each is a conversation: pick the app, see the same.
	for _, tt := range []struct{ command, question, want string }{
		{"/events", "Whose Events in", fmt.Sprintf("Events of <b>web</b> in <b>%s</b>, newest first:", ns)},
		{"/logs", "Whose logs in", "Last 50 lines of <code>pod/web-"},
	} {
		assert.Contains(t, cw.say(t, bob, tt.command), tt.question)
		before := len(cw.messenger.texts())
		cw.router.HandleUpdate(context.Background(), cw.messenger.button(t, "web", bob))
		texts := cw.messenger.texts()[before:]
		require.Len(t, texts, 2, "the menu marked, then the answer")
		assert.Contains(t, texts[0], "\n→ <b>web</b>")
		assert.True(t, strings.HasPrefix(texts[1], tt.want), texts[1])
		requireSafeHTML(t, texts[1])
	}
	assert.Equal(t, 50, strings.Count(cw.messenger.texts()[len(cw.messenger.texts())-1], "fake log line "))
}
