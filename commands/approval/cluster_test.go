package approval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands"
	"github.com/teleop/teleop/commands/approval"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/conversations"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/approvals"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/chats"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/inspect"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

const (
	chatID = -300 // a group: requester and approvers are in the same chat
	alice  = 1    // asks (teleop-editor)
	bob    = 2    // approves (teleop-editor, teleop-approver)
	carol  = 3    // may edit but not approve
)

var names = map[int64]string{alice: "alice", bob: "bob", carol: "carol"}

// chat records what the bot sends and how it answers presses.
type chat struct {
	mu      sync.Mutex
	sent    []bot.Reply
	answers map[string]string
}

func (c *chat) Send(_ context.Context, r bot.Reply) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, r)
	if r.EditMessageID != 0 {
		return r.EditMessageID, nil
	}
	return len(c.sent), nil
}

func (c *chat) AnswerCallback(_ context.Context, id, text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers[id] = text
	return nil
}

// requests are the messages offering [Approve], with their message IDs.
func (c *chat) requests() map[int]bot.Reply {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]bot.Reply{}
	for i, r := range c.sent {
		if r.EditMessageID == 0 && len(r.Buttons) == 1 && strings.Contains(r.Buttons[0][0].Text, "Approve") {
			out[i+1] = r
		}
	}
	return out
}

// latest is the current text of message id (after its edits).
func (c *chat) latest(id int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := c.sent[id-1].Text
	for _, r := range c.sent {
		if r.EditMessageID == id {
			text = r.Text
		}
	}
	return text
}

func (c *chat) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[len(c.sent)-1].Text
}

type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

type world struct {
	t         *testing.T
	c         *cluster.Cluster
	tele      versioned.Interface
	kube      kubernetes.Interface
	ns        string
	chat      *chat
	router    *commands.Router
	gate      *approval.Gate
	access    *access.Authorizer
	clock     *clock
	updateIDs atomic.Int64
}

func newWorld(t *testing.T) *world {
	c := cluster.Shared(t)
	ctx := context.Background()
	_, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(cluster.RepoRoot(), "deploy", "rbac", "chat-roles.yaml"))
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	tele, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ns := c.Namespace(t, "approval-")
	_, err = c.Kubectl(ctx, "label", "namespace", ns, approvals.LabelRequired+"="+approvals.RequiredValue)
	require.NoError(t, err)

	recorder, stop := apps.NewEventRecorder(kube, "teleop-approval-test")
	t.Cleanup(stop)
	w := &world{t: t, c: c, tele: tele, kube: kube, ns: ns, chat: &chat{answers: map[string]string{}}, clock: &clock{}}
	authz := access.New(kube, nil)
	w.access = authz
	w.gate = approval.New(approval.Config{
		Apps:      apps.New(tele, recorder),
		Requests:  approvals.New(tele, kube, recorder, w.clock.Now),
		Access:    authz,
		Messenger: w.chat,
		Now:       w.clock.Now,
	})
	namespaces, err := chats.Start(t.Context(), tele, ns)
	require.NoError(t, err)
	require.NoError(t, namespaces.Set(ctx, chatID, ns))
	engine := conversations.NewEngine(conversations.Config{
		Messenger: w.chat, Apps: w.gate, Authorizer: authz, Namespaces: namespaces,
		ConfigMaps: kube.CoreV1().ConfigMaps(ns),
	})
	w.router, err = commands.NewRouter(commands.Config{
		Apps: w.gate, Access: authz, Namespaces: namespaces, Conversations: engine, Messenger: w.chat,
		Inspect: inspect.New(kube), ButtonHandlers: []commands.ButtonHandler{w.gate},
	})
	require.NoError(t, err)

	w.bind(alice, access.EditorRole, access.OnTeleApps("delete"))
	w.bind(bob, access.EditorRole, access.OnTeleApps("delete"))
	w.bind(bob, access.ApproverRole, access.OnTeleApps(access.VerbApprove))
	w.bind(carol, access.EditorRole, access.OnTeleApps("delete"))
	return w
}

// bind grants role to user in the namespace and waits until RBAC allows p.
func (w *world) bind(user int64, role string, p access.Permission) {
	w.t.Helper()
	ctx := context.Background()
	_, err := w.c.Kubectl(ctx, "create", "rolebinding", fmt.Sprintf("u%d-%s", user, role), "--clusterrole="+role,
		"--user="+identity.User(user), "-n", w.ns)
	require.NoError(w.t, err)
	// The gate's own authorizer: it may remember a refusal for a moment.
	require.Eventually(w.t, func() bool {
		return w.access.Allowed(ctx, identity.For(user, chatID), p, w.ns) == nil
	}, 30*time.Second, 100*time.Millisecond, "RBAC never allowed %s", role)
}

func (w *world) update(user int64) bot.Update {
	return bot.Update{ID: w.updateIDs.Add(1), ChatID: chatID, ChatType: "supergroup", UserID: user, Username: names[user], MessageID: 1}
}

func (w *world) say(user int64, text string) bot.Update {
	u := w.update(user)
	u.Text = text
	w.router.HandleUpdate(context.Background(), u)
	return u
}

// press presses the button labelled label on message id and returns the
// update and the answer it got.
func (w *world) press(user int64, id int, label string) (bot.Update, string) {
	w.t.Helper()
	w.chat.mu.Lock()
	msg := w.chat.sent[id-1]
	w.chat.mu.Unlock()
	for _, b := range msg.Buttons[0] {
		if strings.Contains(b.Text, label) {
			u := w.update(user)
			u.MessageID = id
			u.Callback = &bot.Callback{ID: fmt.Sprint("cb", u.ID), Data: b.Data}
			return u, w.deliver(u)
		}
	}
	w.t.Fatalf("no button %q on %q", label, msg.Text)
	return bot.Update{}, ""
}

// deliver hands u to the router (again, for a redelivery) and returns the answer.
func (w *world) deliver(u bot.Update) string {
	w.router.HandleUpdate(context.Background(), u)
	w.chat.mu.Lock()
	defer w.chat.mu.Unlock()
	return w.chat.answers[u.Callback.ID]
}

// onlyRequest returns the one request message posted so far.
func (w *world) onlyRequest() int {
	w.t.Helper()
	reqs := w.chat.requests()
	require.Len(w.t, reqs, 1, "request messages")
	for id := range reqs {
		return id
	}
	return 0
}

func (w *world) app(name string) *v1alpha1.TeleApp {
	w.t.Helper()
	app, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(w.t, err)
	return app
}

func (w *world) lastApproval(name string) map[string]any {
	w.t.Helper()
	var rec map[string]any
	require.NoError(w.t, json.Unmarshal([]byte(w.app(name).Annotations[approvals.AnnotationLastApproval]), &rec))
	return rec
}

// waitEvents waits until the namespace has Events with every reason of want.
func (w *world) waitEvents(want ...string) {
	w.t.Helper()
	var reasons []string
	require.Eventually(w.t, func() bool {
		list, err := w.kube.CoreV1().Events(w.ns).List(context.Background(), metav1.ListOptions{})
		require.NoError(w.t, err)
		reasons = reasons[:0]
		for _, ev := range list.Items {
			reasons = append(reasons, ev.Reason)
		}
		for _, r := range want {
			if !slices.Contains(reasons, r) {
				return false
			}
		}
		return true
	}, 10*time.Second, 100*time.Millisecond, "want Events %v, have %v", want, reasons)
}

// TestClusterApprovedScaleToZero: the requester's own approval and an
// approval without the verb are refused; the approver's applies the change
// once, however often it is pressed or delivered.
func TestClusterApprovedScaleToZero(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.gate.Create(ctx, w.ns, "web", "nginx:1.27", 3, nil, apps.Audit{Actor: "test", Command: "create", RequestID: "c1"})
	require.NoError(t, err)

	// Scaling that keeps replicas needs nobody else.
	w.say(alice, "/scale web 2")
	assert.Equal(t, fmt.Sprintf("<b>web</b> scaled 3 → 2 in <b>%s</b>", w.ns), w.chat.last())

	ask := w.say(alice, "/scale web -2")
	assert.Contains(t, w.chat.last(), "needs a second person")
	id := w.onlyRequest()
	assert.Equal(t, fmt.Sprintf("🔐 <b>Approval needed</b> in <b>%s</b>: telegram:1 (@alice) asks to scale <b>web</b> to 0 replicas (<code>/scale web -2</code>).", w.ns),
		strings.Split(w.chat.latest(id), "\n")[0])
	assert.Equal(t, int32(2), *w.app("web").Spec.Replicas, "nothing changes before approval")
	w.router.HandleUpdate(ctx, ask) // the same update delivered again
	w.onlyRequest()
	w.say(carol, "/scale web 0")
	assert.Contains(t, w.chat.last(), "already has a change waiting for approval")
	w.onlyRequest()

	_, answer := w.press(alice, id, "Approve")
	assert.Equal(t, "You asked for this change; someone else must approve it.", answer)
	_, answer = w.press(carol, id, "Approve")
	assert.Equal(t, fmt.Sprintf("⛔ You may not approve teleapps in namespace %s: ask an admin for teleop-approver.", w.ns), answer)
	assert.Equal(t, int32(2), *w.app("web").Spec.Replicas, "refused approvals change nothing")

	approve, answer := w.press(bob, id, "Approve")
	assert.Equal(t, "Approved.", answer)
	app := w.app("web")
	assert.Equal(t, int32(0), *app.Spec.Replicas)
	assert.Equal(t, "telegram:1 (@alice), approved by telegram:2 (@bob)", app.Annotations[apps.AnnotationLastChangedBy])
	assert.Equal(t, "/scale web -2", app.Annotations[apps.AnnotationLastCommand])
	assert.NotContains(t, app.Annotations, approvals.AnnotationRequest)
	assert.NotContains(t, app.Labels, approvals.LabelRequestID)
	rec := w.lastApproval("web")
	assert.Equal(t, "applied", rec["outcome"])
	assert.Equal(t, "telegram:2 (@bob)", rec["decidedBy"])
	assert.Contains(t, w.chat.latest(id), "✅ Approved by telegram:2 (@bob): done.")

	// Pressed twice, delivered twice: nothing more is written.
	version := app.ResourceVersion
	_, answer = w.press(bob, id, "Approve")
	assert.Equal(t, "This request is no longer open.", answer)
	approve.Callback.ID += "-again"
	assert.Equal(t, "This request is no longer open.", w.deliver(approve))
	assert.Equal(t, version, w.app("web").ResourceVersion)
	w.waitEvents(approvals.ReasonRequested, approvals.ReasonApproved, apps.ReasonScaledFromChat)

	// /deploy waits too, and is applied once approved.
	w.say(alice, "/deploy web nginx:1.28")
	assert.Contains(t, w.chat.last(), "needs a second person")
	assert.Equal(t, "nginx:1.27", w.app("web").Spec.Image)
	var deploy int
	for msg := range w.chat.requests() {
		if strings.Contains(w.chat.latest(msg), "asks to deploy <code>nginx:1.28</code> to <b>web</b>") {
			deploy = msg
		}
	}
	require.NotZero(t, deploy, "no deploy request posted")
	_, answer = w.press(bob, deploy, "Approve")
	assert.Equal(t, "Approved.", answer)
	assert.Equal(t, "nginx:1.28", w.app("web").Spec.Image)
}

// TestClusterRejectedAndExpiredDeletes: /delete waits too; a rejection or
// the timeout keeps the app.
func TestClusterRejectedAndExpiredDeletes(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.gate.Create(ctx, w.ns, "web", "nginx:1.27", 1, nil, apps.Audit{Actor: "test", Command: "create", RequestID: "c1"})
	require.NoError(t, err)

	confirmDelete := func() int {
		t.Helper()
		before := w.chat.requests()
		w.say(alice, "/delete web")
		w.chat.mu.Lock()
		confirm := len(w.chat.sent)
		w.chat.mu.Unlock()
		w.press(alice, confirm, "Yes")
		assert.Contains(t, w.chat.latest(confirm), "needs a second person")
		for id := range w.chat.requests() {
			if _, old := before[id]; !old {
				return id
			}
		}
		t.Fatal("no request posted")
		return 0
	}

	id := confirmDelete()
	assert.Contains(t, w.chat.latest(id), "asks to delete <b>web</b>")
	_, answer := w.press(carol, id, "Reject")
	assert.Contains(t, answer, "teleop-approver", "rejecting another's request needs the verb too")
	_, answer = w.press(bob, id, "Reject")
	assert.Equal(t, "Rejected; nothing changed.", answer)
	assert.Contains(t, w.chat.latest(id), "✖️ Rejected by telegram:2 (@bob); nothing changed.")
	assert.Equal(t, "rejected", w.lastApproval("web")["outcome"])

	id = confirmDelete()
	w.clock.advance(approvals.DefaultTimeout + time.Second)
	require.NoError(t, w.gate.Sweep(ctx))
	assert.Contains(t, w.chat.latest(id), "⌛ Nobody approved it within 30m; nothing changed.")
	assert.Equal(t, "expired", w.lastApproval("web")["outcome"])
	_, answer = w.press(bob, id, "Approve")
	assert.Equal(t, "This request is no longer open.", answer)

	// The requester may withdraw their own request.
	id = confirmDelete()
	_, answer = w.press(alice, id, "Reject")
	assert.Equal(t, "Rejected; nothing changed.", answer)
	assert.Nil(t, w.app("web").DeletionTimestamp, "the app is still there")
	w.waitEvents(approvals.ReasonRequested, approvals.ReasonRejected, approvals.ReasonExpired)
}
