package commands

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
	"github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/operator/inspect"
)

const (
	botName  = "teleopbot"
	chatID   = 100
	editor   = 1 // may do everything in "default" and "web"
	stranger = 2 // has no RoleBinding
	viewer   = 3 // may read in "default"
)

// recordingMessenger is the chat as the bot sees it: what was sent, what
// button presses were answered.
type recordingMessenger struct {
	mu      sync.Mutex
	replies []bot.Reply
	answers []string
}

func (m *recordingMessenger) Send(_ context.Context, r bot.Reply) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replies = append(m.replies, r)
	if r.EditMessageID != 0 {
		return r.EditMessageID, nil
	}
	return len(m.replies), nil
}

func (m *recordingMessenger) AnswerCallback(_ context.Context, _, text string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answers = append(m.answers, text)
	return nil
}

// button finds the newest message offering a button whose label starts with
// label, and returns a press of it by user.
func (m *recordingMessenger) button(t testing.TB, label string, user int64) bot.Update {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.replies) - 1; i >= 0; i-- {
		for _, row := range m.replies[i].Buttons {
			for _, b := range row {
				if strings.HasPrefix(b.Text, label) {
					u := press(b.Data, from(user))
					u.ChatID, u.MessageID = m.replies[i].ChatID, i+1
					if m.replies[i].EditMessageID != 0 {
						u.MessageID = m.replies[i].EditMessageID
					}
					return u
				}
			}
		}
	}
	t.Fatalf("no button %q was offered", label)
	return bot.Update{}
}

func (m *recordingMessenger) texts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.replies {
		out = append(out, r.Text)
	}
	return out
}

// memoryNamespaces keeps chats' namespaces in a map.
type memoryNamespaces struct {
	mu   sync.Mutex
	byID map[int64]string
	sets int
}

func (n *memoryNamespaces) Get(_ context.Context, chat int64) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ns, ok := n.byID[chat]; ok {
		return ns, nil
	}
	return "default", nil
}

func (n *memoryNamespaces) Set(_ context.Context, chat int64, ns string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byID == nil {
		n.byID = map[int64]string{}
	}
	n.byID[chat] = ns
	n.sets++
	return nil
}

// flowStart is one hand-over to the conversations engine.
type flowStart struct {
	flow   string
	preset map[string]string
}

// recordingConversations stands in for the conversations engine in unit
// tests: it remembers which flows were started and which are open, and takes
// text only while a flow is open.
type recordingConversations struct {
	mu      sync.Mutex
	started []flowStart
	open    map[[2]int64]string
	handled []bot.Update
}

func (c *recordingConversations) Start(_ context.Context, flow string, u bot.Update, preset map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = append(c.started, flowStart{flow, preset})
	if c.open == nil {
		c.open = map[[2]int64]string{}
	}
	c.open[[2]int64{u.ChatID, u.UserID}] = flow
	return nil
}

func (c *recordingConversations) Handle(_ context.Context, u bot.Update) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, open := c.open[[2]int64{u.ChatID, u.UserID}]; !open {
		return false, nil
	}
	c.handled = append(c.handled, u)
	return true, nil
}

func (c *recordingConversations) Cancel(_ context.Context, chat, user int64) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, open := c.open[[2]int64{chat, user}]
	delete(c.open, [2]int64{chat, user})
	return open, nil
}

func (c *recordingConversations) Open(_ context.Context, chat, user int64) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	flow, open := c.open[[2]int64{chat, user}]
	return flow, open, nil
}

// world is a Router over fake clientsets, with RBAC answered from grants.
type world struct {
	router        *Router
	teleop        *fake.Clientset
	messenger     *recordingMessenger
	conversations *recordingConversations
	namespaces    *memoryNamespaces
	events        *record.FakeRecorder
}

type grant struct {
	user      int64
	verbs     []string
	namespace string
}

var defaultGrants = []grant{
	{editor, []string{"get", "list", "watch", "create", "update", "patch", "delete"}, "default"},
	{editor, []string{"get", "list", "watch", "create", "update", "patch", "delete"}, "web"},
	{viewer, []string{"get", "list", "watch"}, "default"},
}

func newWorld(t testing.TB, objects ...runtime.Object) *world {
	t.Helper()
	w := &world{
		teleop:        fake.NewSimpleClientset(objects...),
		messenger:     &recordingMessenger{},
		conversations: &recordingConversations{},
		namespaces:    &memoryNamespaces{},
		events:        record.NewFakeRecorder(1000),
	}
	router, err := NewRouter(Config{
		BotName:       botName,
		Index:         startIndex(t, w.teleop),
		Apps:          apps.New(w.teleop, w.events),
		Access:        access.New(rbacClient(defaultGrants), []string{"telegram:9"}),
		Namespaces:    w.namespaces,
		Conversations: w.conversations,
		Messenger:     w.messenger,
		Inspect:       inspect.New(kubefake.NewClientset()),
	})
	require.NoError(t, err)
	w.router = router
	return w
}

// startIndex starts a TeleApp informer over client with the UID index, as
// cmd wires one, until the test ends.
func startIndex(t testing.TB, client versioned.Interface) cache.Indexer {
	t.Helper()
	factory := externalversions.NewSharedInformerFactory(client, 0)
	informer := factory.Teleop().V1alpha1().TeleApps().Informer()
	require.NoError(t, informer.AddIndexers(cache.Indexers{UIDIndex: IndexByUID}))
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); factory.Shutdown() })
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	return informer.GetIndexer()
}

// rbacClient answers SubjectAccessReviews as RBAC would with grants.
func rbacClient(grants []grant) *kubefake.Clientset {
	client := kubefake.NewClientset()
	client.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		attrs := review.Spec.ResourceAttributes
		for _, g := range grants {
			if review.Spec.User == identity.User(g.user) && attrs.Namespace == g.namespace &&
				attrs.Group == "teleop.io" && attrs.Resource == "teleapps" && contains(g.verbs, attrs.Verb) {
				review.Status.Allowed = true
			}
		}
		return true, review, nil
	})
	return client
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var updateIDs atomic.Int64

type updateOption func(*bot.Update)

func from(user int64) updateOption { return func(u *bot.Update) { u.UserID = user } }

func inGroup(u *bot.Update) { u.ChatID, u.ChatType = -500, "supergroup" }

func withID(id int64) updateOption { return func(u *bot.Update) { u.ID = id } }

// message is a text message from the editor in a private chat, unless told otherwise.
func message(text string, opts ...updateOption) bot.Update {
	u := bot.Update{ID: updateIDs.Add(1), ChatID: chatID, ChatType: "private", UserID: editor, Username: "alice", MessageID: 1, Text: text}
	for _, o := range opts {
		o(&u)
	}
	return u
}

func press(data string, opts ...updateOption) bot.Update {
	u := message("", opts...)
	u.Callback = &bot.Callback{ID: fmt.Sprint("cb", u.ID), Data: data}
	return u
}

type appOption func(*v1alpha1.TeleApp)

func teleApp(namespace, name string, opts ...appOption) *v1alpha1.TeleApp {
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](3)},
	}
	for _, o := range opts {
		o(app)
	}
	return app
}

func withStatus(phase v1alpha1.Phase, ready int32, message string) appOption {
	return func(a *v1alpha1.TeleApp) {
		a.Status.Phase, a.Status.ReadyReplicas, a.Status.Message, a.Status.ObservedGeneration = phase, ready, message, a.Generation
	}
}

func withCondition(typ string, status metav1.ConditionStatus, reason, msg string) appOption {
	return func(a *v1alpha1.TeleApp) {
		a.Status.Conditions = append(a.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg})
	}
}

// withHistory gives the app a history of images, the last one running:
// the first set from a chat, the others with kubectl patch, a minute apart.
func withHistory(images ...string) appOption {
	return func(a *v1alpha1.TeleApp) {
		for i, image := range images {
			by := "kubectl-patch"
			if i == 0 {
				by = "telegram:1 (@alice)"
			}
			at := metav1.NewTime(time.Date(2026, 12, 3, 10, i+1, 0, 0, time.UTC))
			a.Status.History = append(a.Status.History, v1alpha1.Revision{Revision: int64(i + 1), Image: image, ChangedAt: &at, ChangedBy: by})
			a.Spec.Image = image
		}
	}
}

// teleAppWrites are the changes the Router made to TeleApps.
func (w *world) teleAppWrites() []string {
	var out []string
	for _, a := range w.teleop.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			out = append(out, v+" "+a.GetNamespace())
		}
	}
	return out
}

func (w *world) replicas(t testing.TB, namespace, name string) int32 {
	t.Helper()
	app, err := w.teleop.TeleopV1alpha1().TeleApps(namespace).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return ptr.Deref(app.Spec.Replicas, 1)
}

// allowedTags are the only HTML tags replies use; anything else in a reply
// is user input that escaped escaping.
var allowedTags = map[string]bool{"<b>": true, "</b>": true, "<code>": true, "</code>": true, "<pre>": true, "</pre>": true}

func requireSafeHTML(t testing.TB, text string) {
	t.Helper()
	for rest := text; ; {
		open := strings.IndexByte(rest, '<')
		if open < 0 {
			return
		}
		end := strings.IndexByte(rest[open:], '>')
		require.GreaterOrEqual(t, end, 0, "unclosed < in reply %q", text)
		tag := rest[open : open+end+1]
		require.True(t, allowedTags[tag], "reply %q carries tag %q", text, tag)
		rest = rest[open+end+1:]
	}
}
