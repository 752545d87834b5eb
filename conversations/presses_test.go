package conversations

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

func TestPressesThatMustDoNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// press returns the message ID and data pressed, given the world
		// after alice reached the Create/Cancel summary.
		press     func(w *world) (user int64, messageID int, data string)
		wantToast string
	}{
		{
			name: "another user's press names the owner",
			press: func(w *world) (int64, int, string) {
				id, b, _ := w.bot.button(group, "✅ Create", alice)
				return bob, id, b.Data
			},
			wantToast: "This menu belongs to @alice.",
		},
		{
			name: "a stale press of an earlier step",
			press: func(w *world) (int64, int, string) {
				s := mustSession(w, alice) // the replicas menu's "3" was button 2 of the step before
				return alice, s.MenuID - 1, press{owner: alice, id: s.ID, step: s.Step - 1, index: 2}.data()
			},
			wantToast: msgExpired,
		},
		{
			name: "a forged conversation ID",
			press: func(w *world) (int64, int, string) {
				return alice, 1, press{owner: alice, id: "aaaaaaaa", step: mustSession(w, alice).Step, index: 0}.data()
			},
			wantToast: msgExpired,
		},
		{
			name: "a forged button index",
			press: func(w *world) (int64, int, string) {
				s := mustSession(w, alice)
				return alice, s.MenuID, press{owner: alice, id: s.ID, step: s.Step, index: 7}.data()
			},
			wantToast: msgExpired,
		},
		{
			name: "a negative button index",
			press: func(w *world) (int64, int, string) {
				s := mustSession(w, alice)
				return alice, s.MenuID, press{owner: alice, id: s.ID, step: s.Step, index: -1}.data()
			},
			wantToast: msgExpired,
		},
		{
			name:      "garbage with the engine's prefix",
			press:     func(*world) (int64, int, string) { return alice, 1, "cv:" + strings.Repeat("9", 70) },
			wantToast: msgExpired,
		},
		{
			name: "another user forging the owner's ID",
			press: func(w *world) (int64, int, string) {
				return bob, 1, press{owner: alice, id: "zzzzzzzz", step: 1, index: 0}.data()
			},
			wantToast: msgExpired,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.start(alice, "create", nil)
			w.say(alice, "web")
			w.say(alice, "nginx")
			w.press(alice, alice, "3")
			before := mustSession(w, alice)

			user, msg, data := tc.press(w)
			out := w.pressData(user, msg, data)
			assert.Equal(t, tc.wantToast, w.bot.lastAnswer())
			assert.Empty(t, out, "nothing said in the chat")
			assert.Empty(t, w.apps(), "nothing created")
			assert.Equal(t, before, mustSession(w, alice), "alice's conversation is untouched")

			w.press(alice, alice, "✅ Create")
			assert.Equal(t, map[string]int32{"web": 3}, w.apps(), "the owner can still finish")
		})
	}
}

func TestDoublePressActsOnce(t *testing.T) {
	w := newWorld(t, teleApp("web", 1))
	w.start(alice, "delete", map[string]string{"name": "web", "namespace": "default"})
	id, b, ok := w.bot.button(group, "🗑 Yes, delete web", alice)
	require.True(t, ok)
	w.pressData(alice, id, b.Data)
	assert.Equal(t, "", w.bot.lastAnswer())
	out := w.pressData(alice, id, b.Data)
	assert.Equal(t, msgExpired, w.bot.lastAnswer())
	assert.Empty(t, out)
	assert.Empty(t, w.apps())
}

func TestButtonsNotOursAreLeftToTheCaller(t *testing.T) {
	w := newWorld(t)
	u := w.update(alice)
	u.Callback = &bot.Callback{ID: "x", Data: "other:thing"}
	handled, err := w.engine.Handle(context.Background(), u)
	require.NoError(t, err)
	assert.False(t, handled)

	handled, out := w.say(alice, "hello")
	assert.False(t, handled, "text with no conversation open is not ours")
	assert.Empty(t, out)
}

func TestSweeperEndsTimedOutConversations(t *testing.T) {
	w := newWorld(t)
	w.start(alice, "create", nil)
	w.start(bob, "create", nil)
	w.clock.Advance(5 * time.Minute)
	w.say(bob, "web") // bob's answer restarts his 10 minutes

	w.clock.Advance(6 * time.Minute)
	before := w.bot.sends()
	ended, err := w.engine.Sweep(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, ended)
	assert.Contains(t, joined(w.bot.since(before)), "@alice: Your <code>/create</code> timed out after 10 minutes")
	assert.Equal(t, "", w.open(alice))
	assert.Equal(t, "create", w.open(bob))

	before = w.bot.sends()
	ended, err = w.engine.Sweep(context.Background())
	require.NoError(t, err)
	assert.Zero(t, ended, "told once")
	assert.Equal(t, before, w.bot.sends())

	// alice has no conversation any more: her text is not the engine's.
	handled, out := w.say(alice, "web")
	assert.False(t, handled)
	assert.Empty(t, out)
}

func TestStartReplacesTheOpenConversation(t *testing.T) {
	w := newWorld(t, teleApp("web", 1))
	w.start(alice, "scale", nil)
	id, b, ok := w.bot.button(group, "web", alice)
	require.True(t, ok)
	w.start(alice, "create", nil)
	assert.Equal(t, "create", w.open(alice))
	w.pressData(alice, id, b.Data)
	assert.Equal(t, msgExpired, w.bot.lastAnswer(), "the replaced conversation's buttons are dead")
}

func TestPickerPagesBeyondEight(t *testing.T) {
	var objs []runtime.Object
	for i := range 19 {
		objs = append(objs, teleApp(fmt.Sprintf("app-%02d", i), 1))
	}
	w := newWorld(t, objs...)
	out := w.start(alice, "scale", nil)
	assert.Contains(t, joined(out), "(page 1 of 3)")
	_, _, ok := w.bot.button(group, "app-08", alice)
	assert.False(t, ok, "the second page is not shown yet")

	out = w.press(alice, alice, "▶")
	assert.Contains(t, joined(out), "(page 2 of 3)")
	out = w.press(alice, alice, "▶")
	assert.Contains(t, joined(out), "(page 3 of 3)")
	_, _, ok = w.bot.button(group, "▶", alice)
	assert.False(t, ok, "no next page after the last")
	w.press(alice, alice, "◀")
	out = w.press(alice, alice, "app-10")
	assert.Contains(t, joined(out), "<b>app-10</b> has 1 replicas")
}

func TestCallbackDataFitsTelegram(t *testing.T) {
	p := press{owner: -9223372036854775808, id: newID(), step: 1 << 30, index: 999}
	assert.LessOrEqual(t, len(p.data()), 64)
	got, ours, ok := parsePress(p.data())
	assert.True(t, ours)
	assert.True(t, ok)
	assert.Equal(t, p, got)
}

func mustSession(w *world, user int64) session {
	w.t.Helper()
	s, err := w.engine.load(context.Background(), sessionKey(group, user))
	require.NoError(w.t, err)
	require.NotNil(w.t, s)
	return *s
}

// A chat whose TeleChat lists allowedNamespaces is offered only those (that
// the user may list), and a typed other one is refused.
func TestNsOffersAndTakesOnlyTheAllowedNamespaces(t *testing.T) {
	w := newWorld(t, &v1alpha1.TeleChat{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.TeleChatName(group), Namespace: "teleop-system"},
		Spec:       v1alpha1.TeleChatSpec{ChatID: fmt.Sprint(group), Namespace: "web", AllowedNamespaces: []string{"web", "ghost"}},
	})
	assert.Contains(t, joined(w.start(alice, "ns", nil)), "This chat works in <b>web</b>")
	_, _, offered := w.bot.button(group, "web", alice)
	assert.True(t, offered, "web is allowed and alice may list there")
	_, _, offered = w.bot.button(group, "default", alice)
	assert.False(t, offered, "default is not allowed")

	_, out := w.say(alice, "default")
	assert.Contains(t, joined(out), "This chat may not work in default, only in web, ghost.")
	assert.Equal(t, "ns", w.open(alice), "asked again")
	_, out = w.say(alice, "web")
	assert.Contains(t, joined(out), "This chat now works in <b>web</b>.")
}
