package commands

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator/apps"
)

func TestCommands(t *testing.T) {
	ready := teleApp("default", "web", withStatus("Ready", 3, "all 3 pods ready"),
		withCondition("Ready", metav1.ConditionTrue, "AllReady", "3/3 pods ready"),
		withCondition("Degraded", metav1.ConditionFalse, "", ""))
	failing := teleApp("default", "api", withStatus("Degraded", 1, `pod api-1: ImagePullBackOff "<nope>"`))
	shipped := teleApp("default", "web", withHistory("nginx:1.26", "nginx:1.27"))
	tests := []struct {
		name       string
		existing   []runtime.Object
		user       int64
		text       string
		group      bool
		want       []string
		wantWrites []string
		wantFlows  []flowStart
	}{
		{name: "create", text: "/create shop nginx:1.27 2", want: []string{
			"✅ <b>shop</b> created in <b>default</b>: <code>nginx:1.27</code> × 2. I'll tell this chat how it goes."},
			wantWrites: []string{"create default"}},
		{name: "create with one replica by default", text: "/create shop nginx", want: []string{
			"✅ <b>shop</b> created in <b>default</b>: <code>nginx</code> × 1. I'll tell this chat how it goes."},
			wantWrites: []string{"create default"}},
		{name: "create in another namespace", text: "/create web/shop nginx 0", want: []string{
			"✅ <b>shop</b> created in <b>web</b>: <code>nginx</code> × 0. I'll tell this chat how it goes."},
			wantWrites: []string{"create web"}},
		{name: "create taken", existing: []runtime.Object{ready}, text: "/create web nginx", want: []string{
			"<b>web</b> already exists in <b>default</b>. See /status web, or change it with /scale."},
			wantWrites: []string{"create default"}},
		{name: "create where not allowed", text: "/create kube-system/shop nginx", want: []string{
			"⛔ You may not create teleapps in namespace kube-system: ask an admin for teleop-editor."}},
		{name: "create by a viewer", user: viewer, text: "/create shop nginx", want: []string{
			"⛔ You may not create teleapps in namespace default: ask an admin for teleop-editor."}},
		{name: "admin may create anywhere", user: 9, text: "/create kube-system/shop nginx", want: []string{
			"✅ <b>shop</b> created in <b>kube-system</b>: <code>nginx</code> × 1. I'll tell this chat how it goes."},
			wantWrites: []string{"create kube-system"}},
		{name: "scale up", existing: []runtime.Object{ready}, text: "/scale web +2",
			want: []string{"<b>web</b> scaled 3 → 5 in <b>default</b>"}, wantWrites: []string{"update default"}},
		{name: "scale down", existing: []runtime.Object{ready}, text: "/scale web -3",
			want: []string{"<b>web</b> scaled 3 → 0 in <b>default</b>"}, wantWrites: []string{"update default"}},
		{name: "scale to", existing: []runtime.Object{ready}, text: "/Scale@TeleopBot default/web 10",
			want: []string{"<b>web</b> scaled 3 → 10 in <b>default</b>"}, wantWrites: []string{"update default"}},
		{name: "scale to the same", existing: []runtime.Object{ready}, text: "/scale web 3",
			want: []string{"<b>web</b> already has 3 replicas in <b>default</b>."}, wantWrites: []string{"update default"}},
		{name: "scale missing", text: "/scale web 3",
			want: []string{"There is no app <b>web</b> in <b>default</b>. /list shows what there is."}},
		{name: "scale by a stranger", existing: []runtime.Object{ready}, user: stranger, text: "/scale web 5",
			want: []string{"⛔ You may not update teleapps in namespace default: ask an admin for teleop-editor."}},
		{name: "list", existing: []runtime.Object{ready, failing}, user: viewer, text: "/list", want: []string{
			"Apps in <b>default</b>:\n<b>api</b> — Degraded, 1/3 ready\n<b>web</b> — Ready, 3/3 ready"}},
		{name: "list empty", text: "/list", want: []string{
			"No apps in <b>default</b> yet. Create one: <code>/create web nginx:1.27 3</code>"}},
		{name: "list by a stranger", user: stranger, text: "/list", want: []string{
			"⛔ You may not list teleapps in namespace default: ask an admin for teleop-viewer."}},
		{name: "status", existing: []runtime.Object{ready}, user: viewer, text: "/status web", want: []string{
			"<b>web</b> in <b>default</b>: <b>Ready</b>\nImage: <code>nginx:1.27</code>\nReplicas: 3 desired, 3 ready, 0 available, 0 up to date\n" +
				"• Ready: True (AllReady) — 3/3 pods ready\n• Degraded: False\nLatest: all 3 pods ready"}},
		{name: "status escapes the cluster's words", existing: []runtime.Object{failing}, text: "/status api", want: []string{
			"<b>api</b> in <b>default</b>: <b>Degraded</b>\nImage: <code>nginx:1.27</code>\nReplicas: 3 desired, 1 ready, 0 available, 0 up to date\n" +
				"Latest: pod api-1: ImagePullBackOff &#34;&lt;nope&gt;&#34;"}},
		{name: "status missing", text: "/status db", want: []string{"There is no app <b>db</b> in <b>default</b>. /list shows what there is."}},
		{name: "delete asks through the delete flow", existing: []runtime.Object{ready}, text: "/delete web",
			wantFlows: []flowStart{{"delete", map[string]string{"name": "web", "namespace": "default"}}}},
		{name: "delete missing", text: "/delete web", want: []string{"There is no app <b>web</b> in <b>default</b>. /list shows what there is."}},
		{name: "delete by a viewer", existing: []runtime.Object{ready}, user: viewer, text: "/delete web",
			want: []string{"⛔ You may not delete teleapps in namespace default: ask an admin for teleop-editor."}},
		{name: "deploy", existing: []runtime.Object{shipped}, text: "/deploy web nginx:1.28",
			want: []string{"🚀 Deploying <code>nginx:1.28</code> to <b>web</b> in <b>default</b> (was <code>nginx:1.27</code>)…"}, wantWrites: []string{"update default"}},
		{name: "image is deploy", existing: []runtime.Object{shipped}, text: "/image web/web nginx:1.28",
			want: []string{"There is no app <b>web</b> in <b>web</b>. /list shows what there is."}},
		{name: "deploy the running image", existing: []runtime.Object{shipped}, text: "/deploy web nginx:1.27",
			want: []string{"<b>web</b> already runs <code>nginx:1.27</code> in <b>default</b>; nothing changed. /restart web replaces its pods."}},
		{name: "deploy by a viewer", existing: []runtime.Object{shipped}, user: viewer, text: "/deploy web nginx:1.28",
			want: []string{"⛔ You may not patch teleapps in namespace default: ask an admin for teleop-editor."}},
		{name: "bare deploy starts its flow", text: "/deploy", wantFlows: []flowStart{{"deploy", nil}}},
		{name: "bare image starts the deploy flow", text: "/image", wantFlows: []flowStart{{"deploy", nil}}},
		{name: "bare restart starts its flow", text: "/restart", wantFlows: []flowStart{{"restart", nil}}},
		{name: "bare rollback starts its flow", text: "/rollback", wantFlows: []flowStart{{"rollback", nil}}},
		{name: "bare history starts its flow", text: "/history", wantFlows: []flowStart{{"history", nil}}},
		{name: "restart", existing: []runtime.Object{ready}, text: "/restart web",
			want: []string{"🔄 Restarting <b>web</b> in <b>default</b>: its pods are replaced one by one…"}, wantWrites: []string{"update default"}},
		{name: "restart by a viewer", existing: []runtime.Object{ready}, user: viewer, text: "/restart web",
			want: []string{"⛔ You may not patch teleapps in namespace default: ask an admin for teleop-editor."}},
		{name: "rollback to the previous image", existing: []runtime.Object{shipped}, text: "/rollback web",
			want: []string{"↩️ Rolling <b>web</b> in <b>default</b> back to <code>nginx:1.26</code> (revision 1; was <code>nginx:1.27</code>)…"}, wantWrites: []string{"update default"}},
		{name: "rollback to the running revision", existing: []runtime.Object{shipped}, text: "/rollback web 2",
			want: []string{"<b>web</b> already runs <code>nginx:1.27</code> (revision 2) in <b>default</b>; nothing changed."}},
		{name: "rollback to an unknown revision", existing: []runtime.Object{shipped}, text: "/rollback web 9",
			want: []string{"<b>web</b> has no revision 9 in <b>default</b>; /history web lists them. Nothing changed."}},
		{name: "rollback by a viewer", existing: []runtime.Object{shipped}, user: viewer, text: "/rollback web",
			want: []string{"⛔ You may not patch teleapps in namespace default: ask an admin for teleop-editor."}},
		{name: "history", existing: []runtime.Object{shipped}, user: viewer, text: "/history web", want: []string{
			"History of <b>web</b> in <b>default</b>, newest first:\n<b>2</b> <code>nginx:1.27</code> — 2026-12-03 10:02:00 UTC by kubectl-patch ← running\n" +
				"<b>1</b> <code>nginx:1.26</code> — 2026-12-03 10:01:00 UTC by telegram:1 (@alice)\n" +
				"/rollback web goes back to the previous image; /rollback web &lt;revision&gt; to any of these."}},
		{name: "history empty", existing: []runtime.Object{ready}, text: "/history web",
			want: []string{"<b>web</b> in <b>default</b> has no history yet: teleop records each image as it rolls out."}},
		{name: "history by a stranger", existing: []runtime.Object{shipped}, user: stranger, text: "/history web",
			want: []string{"⛔ You may not get teleapps in namespace default: ask an admin for teleop-viewer."}},
		{name: "bare create starts its flow", text: "/create", wantFlows: []flowStart{{"create", nil}}},
		{name: "bare scale starts its flow", text: "/scale@teleopbot", wantFlows: []flowStart{{"scale", nil}}},
		{name: "bare delete starts its flow", text: "/delete", wantFlows: []flowStart{{"delete", nil}}},
		{name: "bare ns starts its flow", text: "/ns", wantFlows: []flowStart{{"ns", nil}}},
		{name: "bare events starts its flow", text: "/events", wantFlows: []flowStart{{"events", nil}}},
		{name: "bare logs starts its flow", text: "/logs@teleopbot", wantFlows: []flowStart{{"logs", nil}}},
		{name: "ns where not allowed", user: viewer, text: "/ns web", want: []string{
			"⛔ You may not list teleapps in namespace web: ask an admin for teleop-viewer."}},
		{name: "whoami", text: "/whoami", want: []string{"Telegram ID: <code>1</code> (@alice)\nKubernetes user: <code>telegram:1</code>\n" +
			"Groups: <code>telegram:chat:100, telegram:users</code>\nThis chat's namespace: <b>default</b>"}},
		{name: "cancel with nothing open", text: "/cancel", want: []string{"Nothing to cancel."}},
		{name: "unknown command", text: "/upgrade web", want: []string{"I don't know <code>/upgrade</code>. Send /help to see what I can do."}},
		{name: "unknown command in a group", group: true, text: "/upgrade", want: []string{"I don't know <code>/upgrade</code>. Send /help to see what I can do."}},
		{name: "another bot's command", group: true, text: "/scale@otherbot web 1", existing: []runtime.Object{ready}},
		{name: "chatter in private", text: "hi there", want: []string{"I understand commands. Send /help to see them."}},
		{name: "chatter in a group", group: true, text: "hi there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.existing...)
			opts := []updateOption{}
			if tt.user != 0 {
				opts = append(opts, from(tt.user))
			}
			if tt.group {
				opts = append(opts, inGroup)
			}
			w.router.HandleUpdate(context.Background(), message(tt.text, opts...))
			assert.Equal(t, tt.want, w.messenger.texts())
			assert.Equal(t, tt.wantWrites, w.teleAppWrites())
			assert.Equal(t, tt.wantFlows, w.conversations.started)
		})
	}
}

func TestCreateRecordsChatAndAudit(t *testing.T) {
	w := newWorld(t)
	u := message("/create web nginx:1.27 3", inGroup)
	w.router.HandleUpdate(context.Background(), u)
	app, err := w.teleop.TeleopV1alpha1().TeleApps("default").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"-500"}, app.Spec.Notify.Chats)
	assert.Equal(t, map[string]string{
		apps.AnnotationLastChangedBy: "telegram:1 (@alice)",
		apps.AnnotationLastCommand:   "/create web nginx:1.27 3",
		apps.AnnotationLastRequestID: "telegram-update-" + itoa(u.ID),
	}, app.Annotations)
	assert.Equal(t, []string{`Normal CreatedFromChat telegram:1 (@alice) ran "/create web nginx:1.27 3": created with image nginx:1.27 and 3 replicas`},
		drainEvents(w))
}

func TestRedeliveredScaleAppliesOnce(t *testing.T) {
	w := newWorld(t, teleApp("default", "web"))
	u := message("/scale web +2")
	w.router.HandleUpdate(context.Background(), u)
	w.router.HandleUpdate(context.Background(), u)
	assert.Equal(t, []string{"<b>web</b> scaled 3 → 5 in <b>default</b>", "Already done: <b>web</b> has 5 replicas in <b>default</b>."}, w.messenger.texts())
	assert.Equal(t, int32(5), w.replicas(t, "default", "web"))
	assert.Len(t, drainEvents(w), 1)
}

func TestNamespaceIsPerChat(t *testing.T) {
	w := newWorld(t, teleApp("web", "shop"), teleApp("default", "site"))
	ctx := context.Background()
	w.router.HandleUpdate(ctx, message("/ns web"))
	w.router.HandleUpdate(ctx, message("/list"))
	w.router.HandleUpdate(ctx, message("/list", inGroup))
	assert.Equal(t, []string{
		"This chat now works in <b>web</b>.",
		"Apps in <b>web</b>:\n<b>shop</b> — Pending, 0/3 ready",
		"Apps in <b>default</b>:\n<b>site</b> — Pending, 0/3 ready",
	}, w.messenger.texts())
}

func TestConversationHandOver(t *testing.T) {
	ctx := context.Background()
	t.Run("text goes to the open conversation", func(t *testing.T) {
		w := newWorld(t)
		w.router.HandleUpdate(ctx, message("/create"))
		w.router.HandleUpdate(ctx, message("web"))
		assert.Empty(t, w.messenger.texts())
		require.Len(t, w.conversations.handled, 1)
		assert.Equal(t, "web", w.conversations.handled[0].Text)
	})
	t.Run("a button press goes to the engine", func(t *testing.T) {
		w := newWorld(t)
		w.router.HandleUpdate(ctx, message("/delete"))
		w.router.HandleUpdate(ctx, press("c:abc:yes"))
		require.Len(t, w.conversations.handled, 1)
		assert.Empty(t, w.messenger.answers, "the engine answers presses it handles")
	})
	t.Run("a new command drops the open conversation and says so", func(t *testing.T) {
		w := newWorld(t, teleApp("default", "web"))
		w.router.HandleUpdate(ctx, message("/create"))
		w.router.HandleUpdate(ctx, message("/scale web 4"))
		assert.Equal(t, []string{"(I dropped your unfinished <code>/create</code>.)", "<b>web</b> scaled 3 → 4 in <b>default</b>"}, w.messenger.texts())
		_, open, _ := w.conversations.Open(ctx, chatID, editor)
		assert.False(t, open)
	})
	t.Run("cancel ends it", func(t *testing.T) {
		w := newWorld(t)
		w.router.HandleUpdate(ctx, message("/scale"))
		w.router.HandleUpdate(ctx, message("/CANCEL"))
		assert.Equal(t, []string{"Cancelled your <code>/scale</code>."}, w.messenger.texts())
	})
	t.Run("another user's conversation is not theirs", func(t *testing.T) {
		w := newWorld(t)
		w.router.HandleUpdate(ctx, message("/create", inGroup))
		w.router.HandleUpdate(ctx, message("web", inGroup, from(viewer)))
		w.router.HandleUpdate(ctx, message("/cancel", inGroup, from(viewer)))
		assert.Empty(t, w.conversations.handled)
		assert.Equal(t, []string{"Nothing to cancel."}, w.messenger.texts())
	})
}

func TestHelpListsEveryCommand(t *testing.T) {
	w := newWorld(t)
	w.router.HandleUpdate(context.Background(), message("/start"))
	w.router.HandleUpdate(context.Background(), message("/help"))
	texts := w.messenger.texts()
	require.Len(t, texts, 2)
	assert.Equal(t, texts[0], texts[1])
	for _, c := range allCommands {
		if c.word != "start" {
			assert.Contains(t, texts[0], code(c.usage))
		}
	}
	requireSafeHTML(t, texts[0])
}

func TestNewRouterNamesWhatIsMissing(t *testing.T) {
	_, err := NewRouter(Config{Messenger: &recordingMessenger{}})
	require.Error(t, err)
	for _, field := range []string{"Apps", "Access", "Namespaces", "Conversations", "Inspect"} {
		assert.ErrorContains(t, err, "Config."+field+" is required")
	}
	var _ bot.Handler = (*Router)(nil)
}

func drainEvents(w *world) []string {
	var out []string
	for {
		select {
		case e := <-w.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A chat that talks to the bot as to a person gets one hint a minute, and a
// command after a flood of chatter is answered right behind it.
func TestChatterGetsOneHintAMinute(t *testing.T) {
	w := newWorld(t, teleApp("default", "web"))
	clk := testingclock.NewFakePassiveClock(time.Now())
	w.router.hints = newHintLimiter(clk)
	for range 200 {
		w.router.HandleUpdate(context.Background(), message("hello"))
	}
	w.router.HandleUpdate(context.Background(), message("/list"))
	texts := w.messenger.texts()
	require.Len(t, texts, 2)
	assert.Equal(t, "I understand commands. Send /help to see them.", texts[0])
	assert.Contains(t, texts[1], "web")

	w.router.HandleUpdate(context.Background(), message("hello", func(u *bot.Update) { u.ChatID = chatID + 1 }))
	assert.Len(t, w.messenger.texts(), 3, "another chat has its own minute")
	clk.SetTime(clk.Now().Add(HintInterval))
	w.router.HandleUpdate(context.Background(), message("hello"))
	assert.Len(t, w.messenger.texts(), 4, "a minute later the chat is hinted again")
}
