package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

// applyChatRoles installs the ClusterRoles chat users are granted.
func (e *env) applyChatRoles() {
	e.t.Helper()
	out, err := e.cluster.Kubectl(ctx(e.t), "apply", "-f", filepath.Join(cluster.RepoRoot(), "deploy", "rbac", "chat-roles.yaml"))
	require.NoError(e.t, err, out)
}

// grantFor binds role to the user in the apps namespace and waits until the
// API server allows them verb on resource.
func (u *user) grantFor(role, verb, resource string) {
	u.e.t.Helper()
	subject := "telegram:" + strconv.FormatInt(u.from.ID, 10)
	out, err := u.e.cluster.Kubectl(ctx(u.e.t), "create", "rolebinding", fmt.Sprintf("%s-%d", role, u.from.ID),
		"--clusterrole="+role, "--user="+subject, "-n", u.e.appsNS)
	require.NoError(u.e.t, err, out)
	u.e.eventually("the binding to take effect", 10*time.Second, func() (bool, error) {
		out, _ := u.e.cluster.Kubectl(ctx(u.e.t), "auth", "can-i", verb, resource, "-n", u.e.appsNS, "--as", subject)
		return strings.TrimSpace(out) == "yes", nil
	})
}

// pressFor presses the button labelled label on message m and returns the
// answer shown to the presser; a stale button (no longer on the message)
// is pressed as an old client would.
func (u *user) pressFor(m telegramemu.Message, label string) string {
	u.e.t.Helper()
	for _, row := range m.Buttons {
		for _, b := range row {
			if !strings.Contains(b.Text, label) {
				continue
			}
			var callbackID string
			if !stillOffered(u.e.emu.Messages(u.chat.ID), m.ID) {
				_, callbackID = u.e.emu.ForgeCallback(u.chat, u.from, m.ID, b.Data)
			} else {
				_, callbackID = u.e.emu.PressButton(u.chat, u.from, m.ID, b.Data)
			}
			answer, err := u.e.emu.WaitCallbackAnswer(ctx(u.e.t), callbackID)
			require.NoError(u.e.t, err, "button %q was not answered", label)
			return answer
		}
	}
	u.e.t.Fatalf("no button %q on message %q", label, m.Text)
	return ""
}

// stillOffered reports whether message id still shows its buttons.
func stillOffered(msgs []telegramemu.Message, id int) bool {
	for _, m := range msgs {
		if m.ID == id {
			return len(m.Buttons) > 0
		}
	}
	return false
}

// /events and /logs through the real binary: the log is read through
// pods/log from KWOK's kubelet server and split into messages that fit.
func TestChatEventsAndLogs(t *testing.T) {
	e := newEnv(t)
	e.applyChatRoles()
	e.start()
	alice := e.user(1001, "alice")
	alice.grantFor("teleop-log-reader", "get", "pods/log")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 1", "created")
	alice.waitText("ready")

	events := alice.say("/events web", "Events of <b>web</b>")
	assert.Contains(t, events.Text, "<code>deployment/web</code>")
	assert.Contains(t, events.Text, "<b>CreatedFromChat</b>")

	before := len(e.emu.Messages(alice.chat.ID))
	alice.say("/logs web 200", "Last 200 lines of <code>pod/web-")
	var all string
	e.eventually("all 200 lines", 30*time.Second, func() (bool, error) {
		all = ""
		for _, m := range e.emu.Messages(alice.chat.ID)[before:] {
			plain := bot.PlainText(m.Text)
			require.LessOrEqual(t, utf8.RuneCountInString(plain), 4096, "a message over Telegram's limit")
			all += plain + "\n"
		}
		return strings.Count(all, "fake log line ") == 200, nil
	})
	assert.Greater(t, len(e.emu.Messages(alice.chat.ID))-before, 1, "200 lines take more than one message")
	assert.Contains(t, all, cluster.FakeLogLine(cluster.FakeLogLines), "the log reads as written once the HTML is parsed")
	assert.Contains(t, all, cluster.FakeLogLine(cluster.FakeLogLines-199))
	assert.NotContains(t, all, cluster.FakeLogLine(cluster.FakeLogLines-200))

	// Without a name, each is a conversation: pick the app, see the same.
	pick := alice.say("/events", "Whose Events in")
	before = len(e.emu.Messages(alice.chat.ID))
	alice.press(pick, "web")
	alice.waitNew(before, "Events of <b>web</b>")
	pick = alice.say("/logs", "Whose logs in")
	before = len(e.emu.Messages(alice.chat.ID))
	alice.press(pick, "web")
	alice.waitNew(before, "Last 50 lines of <code>pod/web-")
	alice.waitText("→ <b>web</b>")
}

// Two-person approval through the real binary: the request survives a
// restart; the requester's own approval and one without the approve verb
// are refused; the approver's is applied once, though pressed twice and
// delivered twice.
func TestChatTwoPersonApproval(t *testing.T) {
	e := newEnv(t)
	e.applyChatRoles()
	out, err := e.cluster.Kubectl(ctx(t), "label", "namespace", e.appsNS, "teleop.io/approval=required")
	require.NoError(t, err, out)
	p := e.start()
	const group = -4100
	alice := e.user(1001, "alice").inGroup(group)
	bob := e.user(1002, "bob").inGroup(group)
	carol := e.user(1003, "carol").inGroup(group)
	bob.grantFor("teleop-approver", "approve", "teleapps.teleop.io")
	for _, u := range []*user{alice, bob, carol} {
		u.grant("teleop-editor")
	}
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 2", "created")

	alice.say("/scale web 0", "needs a second person")
	request := alice.waitText("Approval needed")
	assert.Contains(t, request.Text, "asks to scale <b>web</b> to 0 replicas")
	p.stop()
	p = e.start() // the request lives on the TeleApp, not in teleop's memory

	assert.Equal(t, "You asked for this change; someone else must approve it.", alice.pressFor(request, "Approve"))
	assert.Equal(t, fmt.Sprintf("⛔ You may not approve teleapps in namespace %s: ask an admin for teleop-approver.", e.appsNS),
		carol.pressFor(request, "Approve"))
	assert.Equal(t, int32(2), *e.teleApp("web").Spec.Replicas, "refused approvals change nothing")

	// Bob's press is handled, but teleop dies before confirming it, so
	// Telegram delivers it again to the next teleop.
	time.Sleep(300 * time.Millisecond) // teleop is back in its long poll
	faultEnds := time.Now().Add(10 * time.Second)
	e.emu.Fail(telegramemu.Fault{Method: "getUpdates", Until: faultEnds, Status: http.StatusBadGateway})
	assert.Equal(t, "Approved.", bob.pressFor(request, "Approve"))
	p.kill()
	require.Positive(t, e.emu.PendingUpdates(), "the press is still unconfirmed when teleop dies")
	time.Sleep(time.Until(faultEnds))
	e.start()
	e.eventually("the redelivered press to be confirmed", 30*time.Second, func() (bool, error) {
		return e.emu.PendingUpdates() == 0, nil
	})
	assert.Equal(t, "This request is no longer open.", bob.pressFor(request, "Approve"), "a second press")

	app := e.teleApp("web")
	assert.Equal(t, int32(0), *app.Spec.Replicas)
	assert.Equal(t, "telegram:1001 (@alice), approved by telegram:1002 (@bob)", app.Annotations["teleop.io/last-changed-by"])
	alice.waitText("✅ Approved by telegram:1002 (@bob): done.")
	events, err := e.kube.CoreV1().Events(e.appsNS).List(ctx(t), metav1.ListOptions{FieldSelector: "reason=ScaledFromChat"})
	require.NoError(t, err)
	scaledToZero := int32(0)
	for _, ev := range events.Items {
		if strings.Contains(ev.Message, "approved by") {
			scaledToZero += max(ev.Count, 1)
		}
	}
	assert.Equal(t, int32(1), scaledToZero, "the approved scale was applied once")
}
