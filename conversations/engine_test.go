package conversations

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
)

// step is one line of a transcript: a user does something, the bot answers.
type step struct {
	user int64
	// one of: start (arg = flow), say (arg = text), press (arg = label),
	// wait (the clock moves on by after), revoke (the user loses every
	// permission in arg), restart (a new engine on the same
	// store, as after a crash or a change of leader), cancel.
	do, arg string
	preset  map[string]string
	// owner is whose menu a press is on, when not the user's own.
	owner int64
	after time.Duration
	// want are fragments the bot's messages must contain; toast is the
	// answer to a button press.
	want  []string
	toast string
}

func run(t *testing.T, w *world, steps []step) {
	t.Helper()
	for i, s := range steps {
		var got []string
		switch s.do {
		case "start":
			got = w.start(s.user, s.arg, s.preset)
		case "say":
			handled, out := w.say(s.user, s.arg)
			assert.True(t, handled, "step %d: %q not handled", i, s.arg)
			got = out
		case "press":
			owner := s.user
			if s.owner != 0 {
				owner = s.owner
			}
			got = w.press(s.user, owner, s.arg)
			assert.Equal(t, s.toast, w.bot.lastAnswer(), "step %d: answer to the press of %q", i, s.arg)
		case "revoke":
			w.revoke(s.user, s.arg)
		case "wait":
			w.clock.Advance(s.after)
		case "restart":
			w.engine = w.newEngine()
		case "cancel":
			open, err := w.engine.Cancel(context.Background(), group, s.user)
			require.NoError(t, err)
			assert.True(t, open)
		default:
			t.Fatalf("step %d: unknown action %q", i, s.do)
		}
		for _, frag := range s.want {
			assert.Contains(t, joined(got), frag, "step %d (%s %q)", i, s.do, s.arg)
		}
	}
}

func TestTranscripts(t *testing.T) {
	long := strings.Repeat("a", 5000)
	for _, tc := range []struct {
		name     string
		existing []runtime.Object
		steps    []step
		wantApps map[string]int32
		wantOpen string // flow still open for alice at the end
	}{
		{
			name: "create end to end with a replicas button",
			steps: []step{
				{user: alice, do: "start", arg: "create", want: []string{"New app in <b>default</b>. What is its name?"}},
				{user: alice, do: "say", arg: "web", want: []string{"Which image should <b>web</b> run?"}},
				{user: alice, do: "say", arg: "nginx:1.27", want: []string{"How many replicas of <b>web</b>?"}},
				{user: alice, do: "press", arg: "3", want: []string{"→ <b>3</b>", "Create <b>web</b> in <b>default</b> with image <code>nginx:1.27</code> and 3 replicas?"}},
				{user: alice, do: "press", arg: "✅ Create", want: []string{"✅ Created <b>web</b> in <b>default</b>"}},
			},
			wantApps: map[string]int32{"web": 3},
		},
		{
			name:     "bad answers are explained and asked again; nothing half-created",
			existing: []runtime.Object{teleApp("taken", 1)},
			steps: []step{
				{user: alice, do: "start", arg: "create"},
				{user: alice, do: "say", arg: long, want: []string{"That answer is 5000 characters long; at most 256 are allowed.", "What is its name?"}},
				{user: alice, do: "say", arg: "Web_App", want: []string{"must consist of lowercase letters", "What is its name?"}},
				{user: alice, do: "say", arg: "two words", want: []string{"Send one word"}},
				{user: alice, do: "say", arg: "taken", want: []string{"<b>taken</b> already exists in <b>default</b>; choose another name."}},
				{user: alice, do: "say", arg: "<b>x</b>", want: []string{"&#34;&lt;b&gt;x&lt;/b&gt;&#34;"}},
				{user: alice, do: "say", arg: "api"},
				{user: alice, do: "say", arg: "nginx 1.27", want: []string{"Send an image reference"}},
				{user: alice, do: "say", arg: "ngi'nx", want: []string{"is not a valid image reference"}},
				{user: alice, do: "say", arg: "nginx:1.27"},
				{user: alice, do: "say", arg: "101", want: []string{"Replicas must be between 0 and 100, not 101"}},
				{user: alice, do: "say", arg: "-1", want: []string{"Replicas must be between 0 and 100, not -1"}},
				{user: alice, do: "say", arg: "1e9", want: []string{"Send a number from 0 to 100"}},
				{user: alice, do: "say", arg: "+999999999999", want: []string{"not 999999999999"}},
				{user: alice, do: "say", arg: "7", want: []string{"and 7 replicas?"}},
				{user: alice, do: "say", arg: "yes", want: []string{"Please press one of the buttons, or send /cancel.", "and 7 replicas?"}},
				{user: alice, do: "press", arg: "✖ Cancel", want: []string{"Cancelled: <b>api</b> was not created."}},
			},
			wantApps: map[string]int32{"taken": 1},
		},
		{
			name:     "scale: pick an app, then a replicas button",
			existing: []runtime.Object{teleApp("api", 1), teleApp("web", 3)},
			steps: []step{
				{user: alice, do: "start", arg: "scale", want: []string{"Which app in <b>default</b> should I scale?"}},
				{user: alice, do: "press", arg: "web", want: []string{"<b>web</b> has 3 replicas. How many should it have?"}},
				{user: alice, do: "press", arg: "5", want: []string{"<b>web</b> scaled 3 → 5 in <b>default</b>."}},
			},
			wantApps: map[string]int32{"api": 1, "web": 5},
		},
		{
			name:     "deploy: pick an app, then type the image",
			existing: []runtime.Object{teleApp("web", 3)},
			steps: []step{
				{user: alice, do: "start", arg: "deploy", want: []string{"Which app in <b>default</b> should get another image?"}},
				{user: alice, do: "press", arg: "web", want: []string{"<b>web</b> runs <code>nginx:1.27</code>. Which image should it run?"}},
				{user: alice, do: "say", arg: "nginx 1.28", want: []string{"Send an image reference"}},
				{user: alice, do: "say", arg: "nginx:1.27", want: []string{"<b>web</b> already runs <code>nginx:1.27</code>; send another image, or /cancel."}},
				{user: alice, do: "say", arg: "nginx:1.28", want: []string{"🚀 Deploying <code>nginx:1.28</code> to <b>web</b> in <b>default</b> (was <code>nginx:1.27</code>)…"}},
			},
			wantApps: map[string]int32{"web": 3},
		},
		{
			name:     "restart, rollback and history: pick the app",
			existing: []runtime.Object{teleApp("web", 3)},
			steps: []step{
				{user: alice, do: "start", arg: "restart", want: []string{"Which app in <b>default</b> should I restart?"}},
				{user: alice, do: "press", arg: "web", want: []string{"🔄 Restarting <b>web</b> in <b>default</b>: its pods are replaced one by one…"}},
				{user: alice, do: "start", arg: "rollback", want: []string{"Which app in <b>default</b> should go back to its previous image?"}},
				{user: alice, do: "press", arg: "web", want: []string{"<b>web</b> has run no other image in <b>default</b> that I know of"}},
				{user: alice, do: "start", arg: "history", want: []string{"Which app's history in <b>default</b>?"}},
				{user: alice, do: "say", arg: "web", want: []string{"<b>web</b> in <b>default</b> has no history yet"}},
			},
			wantApps: map[string]int32{"web": 3},
		},
		{
			name:     "scale: typed name and typed replicas",
			existing: []runtime.Object{teleApp("web", 3)},
			steps: []step{
				{user: alice, do: "start", arg: "scale"},
				{user: alice, do: "say", arg: "nope", want: []string{"There is no app <b>nope</b> in <b>default</b>."}},
				{user: alice, do: "say", arg: "web"},
				{user: alice, do: "say", arg: "0", want: []string{"scaled 3 → 0"}},
			},
			wantApps: map[string]int32{"web": 0},
		},
		{
			name:  "scale with nothing to scale ends at once",
			steps: []step{{user: alice, do: "start", arg: "scale", want: []string{"There are no apps in <b>default</b>. Create one with /create."}}},
		},
		{
			name:     "delete: pick, confirm with the name spelled out",
			existing: []runtime.Object{teleApp("web", 1), teleApp("api", 1)},
			steps: []step{
				{user: alice, do: "start", arg: "delete", want: []string{"Which app in <b>default</b> should I delete?"}},
				{user: alice, do: "press", arg: "web", want: []string{"Delete <b>web</b> in <b>default</b>"}},
				{user: alice, do: "press", arg: "🗑 Yes, delete web", want: []string{"🗑 Deleted <b>web</b> from <b>default</b>."}},
			},
			wantApps: map[string]int32{"api": 1},
		},
		{
			name:     "one-shot /delete web: straight to the confirmation; No keeps it",
			existing: []runtime.Object{teleApp("web", 1)},
			steps: []step{
				{user: alice, do: "start", arg: "delete", preset: map[string]string{"name": "web", "namespace": "default"}, want: []string{"Delete <b>web</b> in <b>default</b>"}},
				{user: alice, do: "press", arg: "No, keep it", want: []string{"Kept <b>web</b>."}},
			},
			wantApps: map[string]int32{"web": 1},
		},
		{
			name: "ns: offers only namespaces the user may list in, and sets the chat's",
			steps: []step{
				{user: alice, do: "start", arg: "ns", want: []string{"This chat works in <b>default</b>."}},
				{user: alice, do: "say", arg: "secret", want: []string{"You may not list teleapps in namespace secret"}},
				{user: alice, do: "say", arg: "ghost", want: []string{"There is no namespace <b>ghost</b>."}},
				{user: alice, do: "press", arg: "web", want: []string{"This chat now works in <b>web</b>."}},
				{user: alice, do: "start", arg: "create", want: []string{"⛔ You may not create teleapps in namespace web: ask an admin for teleop-editor."}},
			},
		},
		{
			name: "a user without permission is refused before the first question",
			steps: []step{
				{user: mallory, do: "start", arg: "create", want: []string{"⛔ You may not create teleapps in namespace default"}},
				{user: mallory, do: "start", arg: "scale", want: []string{"⛔ You may not update teleapps"}},
			},
		},
		{
			name: "cancel mid-flow ends it and strips the menu",
			steps: []step{
				{user: alice, do: "start", arg: "create"},
				{user: alice, do: "say", arg: "web"},
				{user: alice, do: "say", arg: "nginx"},
				{user: alice, do: "cancel"},
			},
		},
		{
			name: "timeout noticed on the next answer",
			steps: []step{
				{user: alice, do: "start", arg: "create"},
				{user: alice, do: "say", arg: "web"},
				{user: alice, do: "wait", after: 11 * time.Minute},
				{user: alice, do: "say", arg: "nginx", want: []string{"@alice: Your <code>/create</code> timed out after 10 minutes without an answer; nothing was changed."}},
			},
		},
		{
			name: "restart mid-flow: a new engine on the same store completes it",
			steps: []step{
				{user: alice, do: "start", arg: "create"},
				{user: alice, do: "say", arg: "web"},
				{user: alice, do: "say", arg: "nginx:1.27"},
				{user: alice, do: "restart"},
				{user: alice, do: "press", arg: "2", want: []string{"and 2 replicas?"}},
				{user: alice, do: "restart"},
				{user: alice, do: "press", arg: "✅ Create", want: []string{"✅ Created <b>web</b>"}},
			},
			wantApps: map[string]int32{"web": 2},
		},
		{
			name: "two users in one group, interleaved, do not cross",
			steps: []step{
				{user: alice, do: "start", arg: "create"},
				{user: bob, do: "start", arg: "create"},
				{user: alice, do: "say", arg: "alpha"},
				{user: bob, do: "say", arg: "beta", want: []string{"Which image should <b>beta</b> run?"}},
				{user: bob, do: "say", arg: "redis:7"},
				{user: alice, do: "say", arg: "nginx:1.27", want: []string{"How many replicas of <b>alpha</b>?"}},
				{user: bob, do: "say", arg: "2", want: []string{"Create <b>beta</b>", "<code>redis:7</code>"}},
				{user: alice, do: "say", arg: "1"},
				{user: bob, do: "press", arg: "✅ Create", want: []string{"✅ Created <b>beta</b>"}},
				{user: alice, do: "press", arg: "✅ Create", want: []string{"✅ Created <b>alpha</b>"}},
			},
			wantApps: map[string]int32{"alpha": 1, "beta": 2},
		},
		{
			name: "permission revoked before Create: refused, nothing created",
			steps: []step{
				{user: bob, do: "start", arg: "create"},
				{user: bob, do: "say", arg: "web"},
				{user: bob, do: "say", arg: "nginx"},
				{user: bob, do: "say", arg: "1"},
				{user: bob, do: "revoke", arg: "default"},
				{user: bob, do: "press", arg: "✅ Create", want: []string{"⛔ You may not create teleapps in namespace default"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.existing...)
			run(t, w, tc.steps)
			want := tc.wantApps
			if want == nil {
				want = map[string]int32{}
				for _, o := range tc.existing {
					a := o.(interface{ GetName() string })
					want[a.GetName()] = w.apps()[a.GetName()]
				}
			}
			assert.Equal(t, want, w.apps(), "TeleApps at the end")
			assert.Equal(t, tc.wantOpen, w.open(alice), "alice's open conversation")
		})
	}
}

func TestCountFollowsOpenConversations(t *testing.T) {
	w := newWorld(t)
	count := func() int {
		n, err := w.engine.Count(context.Background())
		require.NoError(t, err)
		return n
	}
	assert.Equal(t, 0, count())
	w.start(alice, "create", nil)
	w.start(bob, "create", nil)
	assert.Equal(t, 2, count())
	_, err := w.engine.Cancel(context.Background(), w.update(alice).ChatID, alice)
	require.NoError(t, err)
	assert.Equal(t, 1, count())
}
